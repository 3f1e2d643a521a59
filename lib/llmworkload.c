/*
 * The workloads of an llm payload (llmb/llmworkload.h): the checks of
 * "synthetic" and "dataset", the seeded generator of synthetic prompts,
 * and the dataset line format. lua/15-dataset.lua holds the same checks
 * and the same line format for redis-cli users; keep the messages alike.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/llmworkload.h>

/* Words that the tokenizers of the GPT (cl100k, o200k) and Llama families
 * each make one token, with the space before them. */
static const char *const words[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was",
    "with", "be", "by", "on", "not", "he", "this", "are", "or", "his",
    "from", "at", "which", "but", "have", "an", "they", "you", "were",
    "her", "she", "there", "one", "all", "we", "can", "been", "has",
    "more", "if", "will", "their", "so", "would", "no", "what", "about",
    "up", "time", "out", "them", "into", "some", "other", "only", "new",
    "than", "then", "its", "also", "any", "two", "may", "people", "like",
    "first", "these", "over", "such", "our", "made", "after", "many",
    "most", "where", "well", "way", "year", "could", "work", "each",
    "good", "part", "day", "back", "long", "world", "place", "life",
    "water", "city", "house", "name", "small", "home", "great", "old",
    "high", "state", "number", "end", "hand", "line", "school", "case",
};

#define NWORDS (sizeof(words) / sizeof(*words))

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double unit(uint64_t *rng)
{
    return (double)(splitmix(rng) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t llmb_llm_synthetic_rng(uint64_t seed, long task, long k)
{
    uint64_t x = seed;
    uint64_t a = splitmix(&x) ^ (uint64_t)task;
    uint64_t b = splitmix(&a) ^ (uint64_t)k;
    return splitmix(&b);
}

long llmb_llm_dist_draw(const struct llmb_llm_dist *d, uint64_t *rng)
{
    double v;

    switch (d->kind) {
    case LLMB_LLM_DIST_FIXED:
        return d->value;
    case LLMB_LLM_DIST_UNIFORM:
        return d->min + (long)(unit(rng) *
                               (double)(d->max - d->min + 1));
    case LLMB_LLM_DIST_NORMAL: {
        /* Box-Muller; 1 - u keeps the logarithm finite. The two draws in
         * this order (one expression would leave it to the compiler). */
        double u1 = unit(rng);
        double u2 = unit(rng);
        v = d->mean + d->stddev * sqrt(-2.0 * log(1.0 - u1)) *
                      cos(2.0 * M_PI * u2);
        v = floor(v + 0.5);
        return v < 1 ? 1 : v > LLMB_LLM_SYNTH_MAX ? LLMB_LLM_SYNTH_MAX
                                                  : (long)v;
    }
    }
    return 1;
}

void llmb_llm_synthetic_words(struct llmb_buf *b, long n, uint64_t *rng)
{
    for (long i = 0; i < n; i++) {
        const char *w = words[splitmix(rng) % NWORDS];
        if (i > 0)
            llmb_buf_append(b, " ", 1);
        llmb_buf_append(b, w, strlen(w));
    }
}

long llmb_llm_text_tokens(size_t bytes)
{
    return bytes < 4 ? 1 : (long)((bytes + 3) / 4);
}

char *llmb_llm_shown(const json_t *v)
{
    char *t = json_is_number(v) ?
              llmb_xasprintf("%.14g", json_number_value(v)) :
              json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    char *s;

    if (t == NULL)
        return llmb_xstrdup("?");
    s = llmb_xasprintf("%.60s%s", t, strlen(t) > 60 ? "..." : "");
    free(t);
    return s;
}

/* "<kind> payload field "<path>" must be <what>, got <v>". */
static int bad(char **errstr, const char *kind, const char *path,
               const char *what, const json_t *v)
{
    char *s = v != NULL ? llmb_llm_shown(v) : NULL;

    if (s != NULL)
        *errstr = llmb_xasprintf("%s payload field \"%s\" must be %s, got %s",
                                 kind, path, what, s);
    else
        *errstr = llmb_xasprintf("%s payload field \"%s\" is required: %s",
                                 kind, path, what);
    free(s);
    return -1;
}

/* True when v is a whole number (an integer, or a real without a
 * fraction, as Lua sees every number and as llmb-push reads a payload),
 * within [min, max]; *out gets it. */
static bool whole(const json_t *v, long min, long max, long *out)
{
    double d;

    if (json_is_integer(v)) {
        if (json_integer_value(v) < min || json_integer_value(v) > max)
            return false;
        *out = (long)json_integer_value(v);
        return true;
    }
    if (!json_is_real(v))
        return false;
    d = json_real_value(v);
    if (!(d >= (double)min && d <= (double)max) || d != floor(d))
        return false;
    *out = (long)d;
    return true;
}

/* Refuses a key of object o not in the NULL-terminated list known. */
static int keys_known(const json_t *o, const char *kind, const char *path,
                      const char *const *known, const char *list,
                      char **errstr)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)o, key, v) {
        size_t i = 0;
        while (known[i] != NULL && strcmp(known[i], key) != 0)
            i++;
        if (known[i] == NULL) {
            *errstr = llmb_xasprintf("%s payload field \"%s\" has an unknown "
                                     "key \"%.40s\" (known: %s)", kind, path,
                                     key, list);
            return -1;
        }
    }
    return 0;
}

/* Integer field name of o in [min, max] into *out; required or not. */
static int int_in(const json_t *o, const char *name, const char *kind,
                  const char *path, long min, long max, bool required,
                  long *out, char **errstr)
{
    json_t *v = json_object_get(o, name);
    char full[96], what[96];

    if (v == NULL && !required)
        return 0;
    snprintf(full, sizeof(full), "%s.%s", path, name);
    snprintf(what, sizeof(what), "an integer from %ld to %ld", min, max);
    if (v == NULL || !whole(v, min, max, out))
        return bad(errstr, kind, full, what, v);
    return 0;
}

static int num_in(const json_t *o, const char *name, const char *kind,
                  const char *path, double min, double max, double *out,
                  char **errstr)
{
    json_t *v = json_object_get(o, name);
    char full[96], what[96];

    snprintf(full, sizeof(full), "%s.%s", path, name);
    snprintf(what, sizeof(what), "a number from %g to %g", min, max);
    if (v == NULL || !json_is_number(v) || !(json_number_value(v) >= min) ||
        !(json_number_value(v) <= max))
        return bad(errstr, kind, full, what, v);
    *out = json_number_value(v);
    return 0;
}

/* A distribution at path: an integer (fixed) or {"dist": ...}. */
static int dist_parse(const json_t *v, const char *kind, const char *path,
                      struct llmb_llm_dist *d, char **errstr)
{
    static const char *const fixed[] = {"dist", "value", NULL};
    static const char *const uniform[] = {"dist", "min", "max", NULL};
    static const char *const normal[] = {"dist", "mean", "stddev", NULL};
    const char *name;
    char full[96];

    memset(d, 0, sizeof(*d));
    if (json_is_number(v)) {
        d->kind = LLMB_LLM_DIST_FIXED;
        if (!whole(v, 1, LLMB_LLM_SYNTH_MAX, &d->value))
            return bad(errstr, kind, path, "a token count from 1 to 100000 "
                       "or a distribution", v);
        return 0;
    }
    snprintf(full, sizeof(full), "%s.dist", path);
    if (!json_is_object(v))
        return bad(errstr, kind, path, "a token count or an object "
                   "{\"dist\": \"fixed\"|\"uniform\"|\"normal\", ...}", v);
    name = json_string_value(json_object_get(v, "dist"));
    if (name == NULL || (strcmp(name, "fixed") != 0 &&
                         strcmp(name, "uniform") != 0 &&
                         strcmp(name, "normal") != 0))
        return bad(errstr, kind, full, "one of \"fixed\", \"uniform\", "
                   "\"normal\"", json_object_get(v, "dist"));
    if (strcmp(name, "fixed") == 0) {
        d->kind = LLMB_LLM_DIST_FIXED;
        return keys_known(v, kind, path, fixed, "dist, value", errstr) ||
               int_in(v, "value", kind, path, 1, LLMB_LLM_SYNTH_MAX, true,
                      &d->value, errstr) ? -1 : 0;
    }
    if (strcmp(name, "uniform") == 0) {
        d->kind = LLMB_LLM_DIST_UNIFORM;
        if (keys_known(v, kind, path, uniform, "dist, min, max", errstr) ||
            int_in(v, "min", kind, path, 1, LLMB_LLM_SYNTH_MAX, true, &d->min,
                   errstr) ||
            int_in(v, "max", kind, path, 1, LLMB_LLM_SYNTH_MAX, true, &d->max,
                   errstr))
            return -1;
        if (d->min > d->max) {
            *errstr = llmb_xasprintf("%s payload field \"%s\": min (%ld) is "
                                     "greater than max (%ld)", kind, path,
                                     d->min, d->max);
            return -1;
        }
        return 0;
    }
    d->kind = LLMB_LLM_DIST_NORMAL;
    return keys_known(v, kind, path, normal, "dist, mean, stddev", errstr) ||
           num_in(v, "mean", kind, path, 1, LLMB_LLM_SYNTH_MAX, &d->mean,
                  errstr) ||
           num_in(v, "stddev", kind, path, 0, LLMB_LLM_SYNTH_MAX, &d->stddev,
                  errstr) ? -1 : 0;
}

/* "api": "chat" (the default) or "completions". */
static int api_parse(const json_t *o, const char *kind, const char *path,
                     bool *completions, char **errstr)
{
    json_t *v = json_object_get(o, "api");
    const char *s = json_string_value(v);
    char full[96];

    *completions = false;
    if (v == NULL)
        return 0;
    snprintf(full, sizeof(full), "%s.api", path);
    if (s == NULL || (strcmp(s, "chat") != 0 && strcmp(s, "completions") != 0))
        return bad(errstr, kind, full, "\"chat\" (/chat/completions) or "
                   "\"completions\" (/completions)", v);
    *completions = strcmp(s, "completions") == 0;
    return 0;
}

int llmb_llm_synthetic_parse(const json_t *v, const char *kind,
                             struct llmb_llm_synthetic *s, char **errstr)
{
    static const char *const known[] = {"input_tokens", "output_tokens",
                                        "seed", "api", NULL};
    long seed = 0;

    memset(s, 0, sizeof(*s));
    if (!json_is_object(v))
        return bad(errstr, kind, "synthetic", "an object {\"input_tokens\": "
                   "..., \"output_tokens\": ..., \"seed\": N}", v);
    if (keys_known(v, kind, "synthetic", known,
                   "input_tokens, output_tokens, seed, api", errstr) != 0)
        return -1;
    if (json_object_get(v, "input_tokens") == NULL)
        return bad(errstr, kind, "synthetic.input_tokens", "a token count "
                   "or a distribution", NULL);
    if (dist_parse(json_object_get(v, "input_tokens"), kind,
                   "synthetic.input_tokens", &s->in, errstr) != 0)
        return -1;
    if (json_object_get(v, "output_tokens") != NULL) {
        if (dist_parse(json_object_get(v, "output_tokens"), kind,
                       "synthetic.output_tokens", &s->out, errstr) != 0)
            return -1;
        s->has_out = true;
    }
    if (int_in(v, "seed", kind, "synthetic", 0, 0x7fffffffL, false, &seed,
               errstr) != 0 ||
        api_parse(v, kind, "synthetic", &s->completions, errstr) != 0)
        return -1;
    s->seed = (uint64_t)seed;
    return 0;
}

int llmb_llm_dataset_parse(const json_t *v, const char *kind,
                           struct llmb_llm_dataset *d, char **errstr)
{
    static const char *const known[] = {"entries", "api", "max_tokens",
                                        NULL};
    json_t *mt;

    memset(d, 0, sizeof(*d));
    if (!json_is_object(v))
        return bad(errstr, kind, "dataset", "an object {\"entries\": N} "
                   "(llmb-push --dataset FILE writes it)", v);
    if (keys_known(v, kind, "dataset", known, "entries, api, max_tokens",
                   errstr) != 0 ||
        int_in(v, "entries", kind, "dataset", 1,
               LLMB_LLM_DATASET_MAX_ENTRIES, true, &d->entries, errstr) != 0 ||
        api_parse(v, kind, "dataset", &d->completions, errstr) != 0)
        return -1;
    mt = json_object_get(v, "max_tokens");
    if (mt != NULL) {
        const char *s = json_string_value(mt);
        if (s == NULL ||
            (strcmp(s, "reference") != 0 && strcmp(s, "payload") != 0))
            return bad(errstr, kind, "dataset.max_tokens", "\"reference\" "
                       "(each entry's reference output length) or "
                       "\"payload\"", mt);
        d->reference_output = strcmp(s, "reference") == 0;
    }
    return 0;
}

json_t *llmb_llm_workload_field(const json_t *payload, const char *name)
{
    json_t *v = json_object_get(payload, name);

    return json_is_null(v) ? NULL : v;
}

int llmb_llm_workload_check(const json_t *payload, const char *kind,
                            char **errstr)
{
    json_t *syn = llmb_llm_workload_field(payload, "synthetic");
    json_t *ds = llmb_llm_workload_field(payload, "dataset");
    const char *which = syn != NULL ? "synthetic" : "dataset";
    struct llmb_llm_synthetic s;
    struct llmb_llm_dataset d;

    if (syn == NULL && ds == NULL)
        return 0;
    if (syn != NULL && ds != NULL) {
        *errstr = llmb_xasprintf("%s payload: give \"synthetic\" or "
                                 "\"dataset\", not both", kind);
        return -1;
    }
    if (json_object_get(payload, "messages") != NULL ||
        json_object_get(payload, "prompt") != NULL) {
        *errstr = llmb_xasprintf("%s payload: \"%s\" makes each request's "
                                 "prompt; give it or \"messages\"/\"prompt\", "
                                 "not both", kind, which);
        return -1;
    }
    if (syn != NULL) {
        if (llmb_llm_synthetic_parse(syn, kind, &s, errstr) != 0)
            return -1;
        if (s.has_out && (json_object_get(payload, "max_tokens") != NULL ||
                          json_object_get(payload,
                                          "max_completion_tokens") != NULL)) {
            *errstr = llmb_xasprintf("%s payload: \"synthetic.output_tokens\" "
                                     "sets each request's max_tokens; give it "
                                     "or \"max_tokens\", not both", kind);
            return -1;
        }
        return 0;
    }
    if (llmb_llm_dataset_parse(ds, kind, &d, errstr) != 0)
        return -1;
    if (d.reference_output &&
        (json_object_get(payload, "max_tokens") != NULL ||
         json_object_get(payload, "max_completion_tokens") != NULL)) {
        *errstr = llmb_xasprintf("%s payload: \"dataset.max_tokens\": "
                                 "\"reference\" sets each request's "
                                 "max_tokens; give it or \"max_tokens\", not "
                                 "both", kind);
        return -1;
    }
    return 0;
}

/* "human"/"user" (1), "gpt"/"assistant"/"chatgpt" (2), other (0). */
static int turn_kind(const json_t *turn)
{
    const char *from = json_string_value(json_object_get(turn, "from"));

    if (from == NULL)
        return 0;
    if (strcmp(from, "human") == 0 || strcmp(from, "user") == 0)
        return 1;
    if (strcmp(from, "gpt") == 0 || strcmp(from, "assistant") == 0 ||
        strcmp(from, "chatgpt") == 0)
        return 2;
    return 0;
}

char *llmb_llm_dataset_entry(const char *line, size_t len, size_t *elen,
                             char **errstr)
{
    json_error_t jerr;
    json_t *o = json_loadb(line, len, 0, &jerr);
    json_t *out = NULL, *conv, *prompt, *msgs, *ot;
    long out_tokens = 0;
    char *text = NULL;
    size_t i;
    json_t *e;

    if (o == NULL) {
        *errstr = llmb_xasprintf("not a JSON object: %s", jerr.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        *errstr = llmb_xstrdup("not a JSON object");
        goto out;
    }
    conv = json_object_get(o, "conversations");
    prompt = json_object_get(o, "prompt");
    msgs = json_object_get(o, "messages");
    ot = json_object_get(o, "output_tokens");
    if ((conv != NULL) + (prompt != NULL) + (msgs != NULL) != 1) {
        *errstr = llmb_xstrdup("needs exactly one of \"prompt\" (a string), "
                               "\"messages\" (chat messages) or "
                               "\"conversations\" (ShareGPT)");
        goto out;
    }
    if (ot != NULL) {
        if (!whole(ot, 1, LLMB_LLM_SYNTH_MAX, &out_tokens)) {
            *errstr = llmb_xasprintf("\"output_tokens\" must be an integer "
                                     "from 1 to %d", LLMB_LLM_SYNTH_MAX);
            goto out;
        }
    }
    if (prompt != NULL) {
        if (!json_is_string(prompt) || json_string_length(prompt) == 0) {
            *errstr = llmb_xstrdup("\"prompt\" must be a non-empty string");
            goto out;
        }
        out = json_pack("{s:O}", "prompt", prompt);
    } else if (msgs != NULL) {
        if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
            *errstr = llmb_xstrdup("\"messages\" must be a non-empty array "
                                   "of {\"role\", \"content\"} objects");
            goto out;
        }
        json_array_foreach(msgs, i, e) {
            if (!json_is_object(e) ||
                !json_is_string(json_object_get(e, "role"))) {
                *errstr = llmb_xasprintf("\"messages\": item %zu must be an "
                                         "object with a string \"role\"", i);
                goto out;
            }
        }
        out = json_pack("{s:O}", "messages", msgs);
    } else {
        json_t *human = NULL;
        if (!json_is_array(conv)) {
            *errstr = llmb_xstrdup("\"conversations\" must be an array of "
                                   "{\"from\", \"value\"} turns");
            goto out;
        }
        json_array_foreach(conv, i, e) {
            const char *v = json_string_value(json_object_get(e, "value"));
            if (human == NULL && turn_kind(e) == 1 && v != NULL && *v != '\0')
                human = json_object_get(e, "value");
            else if (human != NULL && turn_kind(e) == 2 && v != NULL) {
                if (ot == NULL)
                    out_tokens = llmb_llm_text_tokens(strlen(v));
                break;
            }
        }
        if (human == NULL) {
            *errstr = llmb_xstrdup("\"conversations\" has no \"human\" turn "
                                   "with a non-empty \"value\"");
            goto out;
        }
        out = json_pack("{s:O}", "prompt", human);
    }
    if (out_tokens > 0)
        json_object_set_new(out, "output_tokens", json_integer(out_tokens));
    text = json_dumps(out, JSON_COMPACT);
    llmb_assert(text != NULL);
    *elen = strlen(text);
    if (*elen > (size_t)LLMB_LLM_DATASET_ENTRY_MAX) {
        *errstr = llmb_xasprintf("the entry is %zu bytes; the limit is %ld",
                                 *elen, LLMB_LLM_DATASET_ENTRY_MAX);
        free(text);
        text = NULL;
    }
out:
    json_decref(out);
    json_decref(o);
    return text;
}
