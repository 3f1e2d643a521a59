/*
 * Aligned tables, the way people read the CLI's listings: a header row in
 * capitals, columns two spaces apart, numbers right-aligned, "-" for
 * nothing. The whole table is kept until it is printed, since the widths
 * depend on every row.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"

struct table_col {
    char *header;
    bool right;
};

struct llmb_table {
    struct table_col *cols;
    size_t ncols;
    struct llmb_strlist cells; /* row-major; printable, one line each */
};

struct llmb_table *llmb_table_new(void)
{
    return llmb_xcalloc(1, sizeof(struct llmb_table));
}

void llmb_table_column(struct llmb_table *t, const char *header, bool right)
{
    llmb_assert(t->cells.n == 0);
    t->cols = llmb_xrealloc(t->cols, (t->ncols + 1) * sizeof(*t->cols));
    t->cols[t->ncols].header = llmb_xstrdup(header);
    t->cols[t->ncols].right = right;
    t->ncols++;
}

void llmb_table_cell(struct llmb_table *t, const char *text)
{
    char *line;

    llmb_assert(t->ncols > 0);
    if (text == NULL || *text == '\0')
        text = "-";
    line = llmb_output_oneline(text, 4096);
    llmb_strlist_push(&t->cells, line);
    free(line);
}

void llmb_table_cellf(struct llmb_table *t, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = llmb_xvasprintf(fmt, ap);
    va_end(ap);
    llmb_table_cell(t, s);
    free(s);
}

size_t llmb_table_rows(const struct llmb_table *t)
{
    return t->ncols ? t->cells.n / t->ncols : 0;
}

/* Columns a string takes on a terminal: UTF-8 continuation bytes do not
 * count (wide characters are rare in ids, hosts and states). */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

static void print_cell(FILE *out, const char *s, size_t w, bool right,
                       bool last)
{
    size_t pad = w - width(s);

    if (right)
        fprintf(out, "%*s", (int)pad, "");
    fputs(s, out);
    if (!right && !last)
        fprintf(out, "%*s", (int)pad, "");
}

void llmb_table_print(const struct llmb_table *t, FILE *out)
{
    size_t rows = llmb_table_rows(t);
    size_t *w = llmb_xcalloc(t->ncols, sizeof(*w));

    for (size_t c = 0; c < t->ncols; c++) {
        w[c] = width(t->cols[c].header);
        for (size_t r = 0; r < rows; r++) {
            size_t cw = width(t->cells.v[r * t->ncols + c]);
            if (cw > w[c])
                w[c] = cw;
        }
    }
    for (size_t r = 0; r <= rows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = r == 0 ? t->cols[c].header
                                   : t->cells.v[(r - 1) * t->ncols + c];
            if (c > 0)
                fputs("  ", out);
            print_cell(out, s, w[c], t->cols[c].right, c + 1 == t->ncols);
        }
        fputc('\n', out);
    }
    free(w);
}

void llmb_table_free(struct llmb_table *t)
{
    if (t == NULL)
        return;
    for (size_t c = 0; c < t->ncols; c++)
        free(t->cols[c].header);
    free(t->cols);
    llmb_strlist_clear(&t->cells);
    free(t);
}
