/*
 * Looks up the embedded files of the web UI (assets.h); the table itself
 * is generated at build time by cmake/EmbedWeb.cmake.
 */
#include <string.h>

#include "assets.h"

const struct llmb_web_asset *llmb_web_asset_find(const char *path)
{
    for (size_t i = 0; i < llmb_web_nassets; i++)
        if (strcmp(llmb_web_assets[i].path, path) == 0)
            return &llmb_web_assets[i];
    return NULL;
}
