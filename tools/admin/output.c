/*
 * How results reach the user. With --json a command builds one JSON
 * document and hands it to llmb_output_json(), so stdout is always exactly
 * one document a script can parse; tables and text go through table.c and
 * use llmb_output_oneline() to keep what Redis holds (errors, payloads,
 * hand-written values) from breaking a line.
 */
#include <string.h>

#include "admin.h"

void llmb_output_json(struct llmb_admin *a, json_t *doc)
{
    /* 15 digits: a number stored as 0.8 prints as 0.8, not with the
     * noise digits of its binary value (0.80000000000000004). */
    json_dumpf(doc, a->out, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    fputc('\n', a->out);
    json_decref(doc);
}

char *llmb_output_oneline(const char *text, size_t max)
{
    size_t len, cut;
    char *s;

    if (text == NULL)
        return NULL;
    len = strlen(text);
    cut = len;
    if (len > max) {
        cut = max > 3 ? max - 3 : 0;
        /* Do not cut a UTF-8 sequence in half. */
        while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80)
            cut--;
    }
    s = llmb_xmalloc(cut + 4);
    memcpy(s, text, cut);
    for (size_t i = 0; i < cut; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            s[i] = ' ';
    if (cut < len)
        memcpy(s + cut, "...", 4);
    else
        s[cut] = '\0';
    return s;
}
