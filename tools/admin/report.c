/*
 * `llmb report JOB [JOB...] -o report.html`: one HTML file that shows the
 * jobs as the web UI does (docs/web.md), to hand over or archive: it opens
 * from disk, offline, and makes no network request.
 *
 * It is the web UI's own page (web/index.html, embedded: assets.h) with
 * the stylesheet, Chart.js and app.js inlined, and the data that the live
 * page would fetch carried in a <script type="application/json"> block:
 * for each job the document of `llmb show --json` (llmb_view_show(), the
 * same builder), and for several jobs, or one A/B job, the document of
 * `llmb compare --json` (llmb_view_compare()). app.js finds the block and
 * reads it instead of the API, so the same code draws both.
 *
 * Safety of a file opened locally. The page's Content-Security-Policy (a
 * <meta> tag) allows exactly the inline script and style it carries, by
 * their SHA-256, and nothing else: no other script, no network (no
 * default, connect or image source but data: images). The data block is
 * JSON with every '<', '>' and '&' written as \u escapes, so no value from
 * Redis can end the block or open a tag; app.js puts every value into the
 * page as text.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <llmb/err.h>
#include <llmb/sha256.h>

#include "admin.h"
#include "assets.h"

/* Tasks of each job listed in the report (the task grid and the per-task
 * chart); the others are counted in task_states. */
#define REPORT_TASKS 1000

/* The markup of web/index.html that the report replaces: each must be
 * there exactly once (tests/browser checks that the report draws). */
#define TAG_CHARSET "<meta charset=\"utf-8\">"
#define TAG_TITLE "<title>llmb</title>"
#define TAG_ICON "<link rel=\"icon\" href=\"static/favicon.svg\" " \
                 "type=\"image/svg+xml\">"
#define TAG_CSS "<link rel=\"stylesheet\" href=\"static/app.css\">"
#define TAG_CHART "<script src=\"static/vendor/chart.min.js\"></script>"
#define TAG_APP "<script src=\"static/app.js\"></script>"

/* Appends the standard base64 of n bytes of p. */
static void base64(struct llmb_buf *b, const unsigned char *p, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[4];

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[0] = tab[v >> 18 & 63];
        out[1] = tab[v >> 12 & 63];
        out[2] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[3] = i + 2 < n ? tab[v & 63] : '=';
        llmb_buf_append(b, out, 4);
    }
}

/* Appends "'sha256-<base64>'" of text, a CSP source. */
static void csp_hash(struct llmb_buf *b, const char *text, size_t len)
{
    struct llmb_sha256 s;
    unsigned char d[LLMB_SHA256_LEN];

    llmb_sha256_init(&s);
    llmb_sha256_update(&s, text, len);
    llmb_sha256_final_raw(&s, d);
    llmb_buf_appendf(b, " 'sha256-");
    base64(b, d, sizeof(d));
    llmb_buf_appendf(b, "'");
}

/* The embedded file path as a NUL-terminated string (they all are). */
static const char *asset_text(const char *path, size_t *len)
{
    const struct llmb_web_asset *f = llmb_web_asset_find(path);

    llmb_assert(f != NULL);
    *len = f->len;
    return (const char *)f->data;
}

/* True when inline text could end its element or change how the HTML
 * parser reads it ("</script", "<!--"): such a file cannot be inlined
 * as it is. */
static bool unsafe_inline(const char *text, const char *end_tag)
{
    return strcasestr(text, end_tag) != NULL || strstr(text, "<!--") != NULL;
}

/* data as JSON that can sit in a <script> block: '<', '>' and '&' are
 * \u escapes, which only strings can hold, so JSON.parse reads the same
 * values. Returns a malloc'd string. */
static char *data_json(const json_t *data)
{
    char *text = json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(15));
    struct llmb_buf b;

    llmb_assert(text != NULL);
    llmb_buf_init(&b);
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '<')
            llmb_buf_appendf(&b, "\\u003c");
        else if (*p == '>')
            llmb_buf_appendf(&b, "\\u003e");
        else if (*p == '&')
            llmb_buf_appendf(&b, "\\u0026");
        else
            llmb_buf_append(&b, p, 1);
    }
    free(text);
    return llmb_buf_steal(&b);
}

/* Appends s with the characters that mean something in HTML escaped. */
static void html_text(struct llmb_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '<': llmb_buf_appendf(b, "&lt;"); break;
        case '>': llmb_buf_appendf(b, "&gt;"); break;
        case '&': llmb_buf_appendf(b, "&amp;"); break;
        case '"': llmb_buf_appendf(b, "&quot;"); break;
        default: llmb_buf_append(b, s, 1);
        }
    }
}

/* Reads every job of a->args (a JOB@PAIR names its job) and, for several
 * jobs or one A/B job, their comparison, into the report's data. */
static int report_data(struct llmb_admin *a, json_t **out, char **errstr)
{
    json_t *data = json_object(), *jobs = json_array(), *seen = json_object();
    json_t *specs = json_array(), *cmp = NULL;
    int64_t now = 0;
    int rc = llmb_lookup_now(a, &now, errstr);

    for (size_t i = 0; rc == 0 && i < a->nargs; i++) {
        const char *spec = a->args[i], *at = strchr(spec, '@');
        char *job = at != NULL ? llmb_xasprintf("%.*s", (int)(at - spec), spec)
                               : llmb_xstrdup(spec);
        json_t *doc = NULL;

        json_array_append_new(specs, json_string(spec));
        if (json_object_get(seen, job) == NULL) {
            rc = llmb_view_show(a, job, REPORT_TASKS, 0, &doc, errstr);
            if (rc == 0) {
                llmb_view_drop_records(doc);
                json_array_append_new(jobs, doc);
                json_object_set(seen, job, doc);
            }
        }
        free(job);
    }
    if (rc != 0)
        goto out;
    /* The comparison is a part of the report, not a condition of it: a
     * job without an aggregate is still shown, and the report says why
     * nothing is compared. It takes each job's aggregate from the show
     * document just read (seen), so both parts show the same reading. */
    if (a->nargs >= 2 || json_array_size(jobs) == 1) {
        char *cerr = NULL;
        if (llmb_view_compare_shown(a, a->args, a->nargs, seen, &cmp,
                                    &cerr) == 0) {
            json_object_set_new(data, "compare", cmp);
        } else if (a->nargs >= 2) {
            json_object_set_new(data, "compare_error", llmb_json_str(cerr));
        }
        free(cerr);
    }
    json_object_set_new(data, "llmb_report", json_integer(1));
    json_object_set_new(data, "version", json_string(LLMB_VERSION_STRING));
    json_object_set_new(data, "generated_ms", json_integer(now));
    json_object_set(data, "compare_specs", specs);
    json_object_set(data, "jobs", jobs);

out:
    json_decref(jobs);
    json_decref(specs);
    json_decref(seen);
    if (rc != 0) {
        json_decref(data);
        data = NULL;
    }
    *out = data;
    return rc;
}

/* Appends the page: index.html with its tags replaced as the top of this
 * file says. */
static void report_html(struct llmb_buf *b, const struct llmb_admin *a,
                        const char *data)
{
    size_t len, csslen, chartlen, applen;
    const char *page = asset_text("index.html", &len);
    const char *css = asset_text("app.css", &csslen);
    const char *chart = asset_text("vendor/chart.min.js", &chartlen);
    const char *app = asset_text("app.js", &applen);
    static const char *const tags[] = {TAG_CHARSET, TAG_TITLE, TAG_ICON,
                                       TAG_CSS, TAG_CHART, TAG_APP};
    const char *p = page;
    struct llmb_buf csp;

    /* The embedded files are ours: a change that breaks these is a bug
     * the tests see at once. */
    llmb_assert(!unsafe_inline(css, "</style"));
    llmb_assert(!unsafe_inline(chart, "</script"));
    llmb_assert(!unsafe_inline(app, "</script"));

    llmb_buf_init(&csp);
    llmb_buf_appendf(&csp, "default-src 'none'; script-src");
    csp_hash(&csp, chart, chartlen);
    csp_hash(&csp, app, applen);
    llmb_buf_appendf(&csp, "; style-src");
    csp_hash(&csp, css, csslen);
    llmb_buf_appendf(&csp, "; img-src data:; base-uri 'none'; "
                           "form-action 'none'");

    for (size_t t = 0; t < sizeof(tags) / sizeof(*tags); t++) {
        const char *at = strstr(p, tags[t]);
        llmb_assert(at != NULL && strstr(at + 1, tags[t]) == NULL);
        llmb_buf_append(b, p, (size_t)(at - p));
        p = at + strlen(tags[t]);
        switch (t) {
        case 0:
            llmb_buf_appendf(b, "%s\n<meta http-equiv=\"Content-Security-"
                                "Policy\" content=\"%s\">", TAG_CHARSET,
                             csp.data);
            break;
        case 1:
            llmb_buf_appendf(b, "<title>llmb report: ");
            for (size_t i = 0; i < a->nargs; i++) {
                if (i > 0)
                    llmb_buf_appendf(b, ", ");
                html_text(b, a->args[i]);
            }
            llmb_buf_appendf(b, "</title>");
            break;
        case 2:
            llmb_buf_appendf(b, "<link rel=\"icon\" href=\"data:,\">");
            break;
        case 3:
            llmb_buf_appendf(b, "<style>");
            llmb_buf_append(b, css, csslen);
            llmb_buf_appendf(b, "</style>");
            break;
        case 4:
            llmb_buf_appendf(b, "<script type=\"application/json\" "
                                "id=\"llmb-report-data\">%s</script>\n"
                                "<script>", data);
            llmb_buf_append(b, chart, chartlen);
            llmb_buf_appendf(b, "</script>");
            break;
        default:
            llmb_buf_appendf(b, "<script>");
            llmb_buf_append(b, app, applen);
            llmb_buf_appendf(b, "</script>");
            break;
        }
    }
    llmb_buf_append(b, p, strlen(p));
    llmb_buf_fini(&csp);
}

/* Writes len bytes of text to path through a temporary file renamed over
 * it, or to stdout for NULL or "-". */
static int write_out(struct llmb_admin *a, const char *path,
                     const char *text, size_t len, char **errstr)
{
    char *tmp;
    FILE *f;
    int err = 0, fd;

    if (path == NULL || strcmp(path, "-") == 0) {
        if (fwrite(text, 1, len, a->out) != len || fflush(a->out) != 0) {
            *errstr = llmb_xasprintf("cannot write the report: %s",
                                     strerror(errno));
            return LLMB_EIO;
        }
        return 0;
    }
    /* a new file of a name no one could foresee, in the target's
     * directory (mkstemp(): O_CREAT|O_EXCL, so never through a link
     * planted there), readable as a file written by fopen() would be,
     * then renamed over the target */
    tmp = llmb_xasprintf("%s.tmp.XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd >= 0 && fchmod(fd, 0644) != 0) {
        err = errno;
        close(fd);
        unlink(tmp);
        fd = -1;
        errno = err;
    }
    f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        err = errno;
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        *errstr = llmb_xasprintf("cannot write %s: %s", path, strerror(err));
        free(tmp);
        return LLMB_EIO;
    }
    if (fwrite(text, 1, len, f) != len)
        err = errno;
    if (fclose(f) != 0 && err == 0)
        err = errno;
    if (err == 0 && rename(tmp, path) != 0)
        err = errno;
    if (err != 0) {
        unlink(tmp);
        *errstr = llmb_xasprintf("cannot write %s: %s", path, strerror(err));
        free(tmp);
        return LLMB_EIO;
    }
    free(tmp);
    return 0;
}

int llmb_report_run(struct llmb_admin *a, char **errstr)
{
    json_t *data = NULL, *cmp;
    char *json = NULL;
    struct llmb_buf page;
    int rc;

    llmb_buf_init(&page);
    rc = report_data(a, &data, errstr);
    if (rc != 0)
        goto out;
    json = data_json(data);
    report_html(&page, a, json);
    rc = write_out(a, a->cfg->output, page.data, page.len, errstr);
    if (rc != 0)
        goto out;
    if (a->cfg->output != NULL && strcmp(a->cfg->output, "-") != 0)
        fprintf(stderr, "llmb: report of %zu job%s written to %s (%zu KB)\n",
                json_array_size(json_object_get(data, "jobs")),
                json_array_size(json_object_get(data, "jobs")) == 1 ? ""
                                                                    : "s",
                a->cfg->output, (page.len + 1023) / 1024);
    cmp = json_object_get(data, "compare_error");
    if (json_is_string(cmp))
        fprintf(stderr, "llmb: the report compares nothing: %s\n",
                json_string_value(cmp));

out:
    llmb_buf_fini(&page);
    free(json);
    json_decref(data);
    return rc;
}
