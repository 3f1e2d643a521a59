/*
 * The files of the web UI, embedded at build time (cmake/EmbedWeb.cmake
 * generates the table from web/ and Debian's Chart.js): `llmb web`
 * serves them and `llmb report` inlines them, so neither reads a file at
 * run time. Paths are relative to web/ ("index.html", "app.js"), Chart.js
 * is "vendor/chart.min.js".
 */
#ifndef LLMB_ADMIN_ASSETS_H
#define LLMB_ADMIN_ASSETS_H

#include <stddef.h>

struct llmb_web_asset {
    const char *path;          /* relative to web/, no leading '/' */
    const char *type;          /* its Content-Type */
    const unsigned char *data; /* len bytes, then a NUL */
    size_t len;
};

/* Every embedded file, sorted by path (generated/web_assets.c). */
extern const struct llmb_web_asset llmb_web_assets[];
extern const size_t llmb_web_nassets;

/* The file of path (as above), or NULL. */
const struct llmb_web_asset *llmb_web_asset_find(const char *path);

#endif
