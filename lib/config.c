/*
 * The configuration engine behind every llmb program's main(): one table of
 * struct llmb_opt per program, plus the common options below, drives the
 * defaults, the config file, the LLMB_* environment, the flags, --help,
 * --dump-config and the docs table (like Redis' static_configs[] and tmux's
 * options-table.c). Sources are applied in rising precedence -- defaults,
 * file, environment, flags -- into the program's config struct, each value
 * written through the option's offset.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <llmb/config.h>
#include <llmb/connect.h>
#include <llmb/err.h>
#include <llmb/functions.h>
#include <llmb/log.h>
#include <llmb/url.h>
#include <llmb/util.h>

#ifndef LLMB_VERSION_STRING
#define LLMB_VERSION_STRING "0.0.0"
#endif

#define ENV_CONFIG "LLMB_CONFIG"

static const struct llmb_opt common_opts[] = {
    {"redis", 0, "LLMB_REDIS_URL", LLMB_OPT_STR, "redis://127.0.0.1:6379",
     "URL",
     "Redis server: redis://[[user]:password@]host[:port][/db], "
     "unix:///path/redis.sock[?db=N], a Redis Cluster, "
     "redis+cluster://[[user]:password@]host:port[,host:port], or, a "
     "primary watched by Sentinel, "
     "redis+sentinel://[[user]:password@]host:port[,host:port]/NAME[?db=N].",
     offsetof(struct llmb_common, redis_url), 0, 0, true},
    {"prefix", 0, "LLMB_PREFIX", LLMB_OPT_STR, "llmb", "PREFIX",
     "Prefix of every Redis key llmb uses (letters, digits and _ . : -).",
     offsetof(struct llmb_common, prefix), 0, 0, false},
    {"log-level", 0, "LLMB_LOG_LEVEL", LLMB_OPT_STR, "info", "LEVEL",
     "Least severe log lines to print: debug, info, warn or error.",
     offsetof(struct llmb_common, log_level), 0, 0, false},
    {"config", 0, ENV_CONFIG, LLMB_OPT_STR, NULL, "FILE",
     "Config file of \"key = value\" lines, keys named like the long flags.",
     offsetof(struct llmb_common, config_file), 0, 0, false},
    {"wait-replicas", 0, "LLMB_WAIT_REPLICAS", LLMB_OPT_INT, "0", "N",
     "After each write (FCALL), wait until N replicas have it (WAIT), at "
     "most --wait-replicas-ms; short of them the write stays made, the "
     "worker logs it and the other programs get the error NOREPLICAS. 0 = "
     "do not wait.",
     offsetof(struct llmb_common, wait_replicas), 0, 16, false},
    {"wait-replicas-ms", 0, "LLMB_WAIT_REPLICAS_MS", LLMB_OPT_INT, "1000",
     "MS", "Longest wait of --wait-replicas for one write; less than "
     "--redis-timeout-ms where the program has one.",
     offsetof(struct llmb_common, wait_replicas_ms), 1, 60000, false},
};
#define NCOMMON (sizeof(common_opts) / sizeof(common_opts[0]))
/* Indexes into common_opts. */
#define OPT_REDIS 0
#define OPT_PREFIX 1
#define OPT_LOG_LEVEL 2
#define OPT_CONFIG 3

/* Flags that do something instead of setting a field. */
enum action { ACT_NONE, ACT_HELP, ACT_DUMP, ACT_VERSION, ACT_MARKDOWN };

static const struct {
    const char *name;
    char short_name;
    enum action act;
    const char *help;
} actions[] = {
    {"help", 'h', ACT_HELP, "Print this help and exit."},
    {"dump-config", 0, ACT_DUMP,
     "Print the effective configuration as a config file and exit."},
    {"version", 0, ACT_VERSION, "Print the version and exit."},
    {"help-markdown", 0, ACT_MARKDOWN,
     "Print the options as a markdown table (docs/configuration.md) and "
     "exit."},
};
#define NACTIONS (sizeof(actions) / sizeof(actions[0]))

/*
 * The LLMB_* variables that some llmb program, or the worker's exec
 * programs, scripts and tests, read: one set for another program is not
 * worth a warning (it may be a shared environment), unless it looks like
 * one of this program's. tests/e2e/config_env.sh checks that every
 * variable of every option table is here.
 */
static const struct {
    const char *env;    /* a name, or a prefix when it ends in '_' */
    const char *reader; /* "llmb-push"; NULL = every program */
} known_env[] = {
    {"LLMB_QUEUES", "llmb-worker"},
    {"LLMB_CAPACITY", "llmb-worker"},
    {"LLMB_WORKER_ID", "llmb-worker"},
    {"LLMB_TAGS", "llmb-worker"},
    {"LLMB_HEARTBEAT_MS", "llmb-worker"},
    {"LLMB_LEASE_MS", "llmb-worker"},
    {"LLMB_GRACE", "llmb-worker"},
    {"LLMB_HANDLERS", "llmb-worker"},
    {"LLMB_NO_HANDLER_FAIL_AFTER_S", "llmb-worker"},
    {"LLMB_MAX_OUTPUT_BYTES", "llmb-worker"},
    {"LLMB_KILL_GRACE_MS", "llmb-worker"},
    {"LLMB_COMMAND_TIMEOUT_MS", "llmb-worker"}, /* old LLMB_REDIS_TIMEOUT_MS */
    {"LLMB_EXEC_ENV", "llmb-worker"},
    {"LLMB_EXEC_RLIMIT_CPU", "llmb-worker"},
    {"LLMB_EXEC_RLIMIT_AS", "llmb-worker"},
    {"LLMB_EXEC_RLIMIT_NOFILE", "llmb-worker"},
    {"LLMB_LLM_ENDPOINTS", "llmb-worker"},
    {"LLMB_COORDINATOR_ID", "llmb-coordinator"},
    {"LLMB_TICK_MS", "llmb-coordinator"},
    {"LLMB_LIVENESS_MS", "llmb-coordinator"},
    {"LLMB_GONE_AFTER_MS", "llmb-coordinator"},
    {"LLMB_DEAD_AFTER_MS", "llmb-coordinator"},
    {"LLMB_RECONNECT_GRACE_MS", "llmb-coordinator"},
    {"LLMB_WORKER_RETENTION_S", "llmb-coordinator"},
    {"LLMB_RETENTION_S", "llmb-coordinator"},
    {"LLMB_EVENTS_MAX", "llmb-coordinator"},
    {"LLMB_DEAD_MAX", "llmb-coordinator"},
    {"LLMB_WRITE_CONF", "llmb-coordinator"},
    {"LLMB_REAP_LIMIT", "llmb-coordinator"},
    {"LLMB_AGG_LEASE_MS", "llmb-coordinator"},
    {"LLMB_AGG_BATCH", "llmb-coordinator"},
    {"LLMB_AGG_BUDGET_MS", "llmb-coordinator"},
    {"LLMB_AGG_MAX_BYTES", "llmb-coordinator"},
    {"LLMB_SCAN_BATCH", "llmb-coordinator"},
    {"LLMB_METRICS_MS", "llmb-coordinator"},
    {"LLMB_METRICS_ADDR", "llmb-coordinator"},
    {"LLMB_LOAD_DEGRADED_PCT", "llmb-coordinator"},
    {"LLMB_REDIS_TIMEOUT_MS", "llmb-worker, llmb-coordinator and llmb-push"},
    {"LLMB_QUEUE", "llmb-push"},
    {"LLMB_PUSH_BATCH_SIZE", "llmb-push"},
    {"LLMB_PUSH_PIPELINE", "llmb-push"},
    {"LLMB_PUSH_JOURNAL", "llmb-push"},
    {"LLMB_STATE_DIR", "llmb-push"},
    /* Given by the worker to its exec programs (docs/executors.md). */
    {"LLMB_JOB_ID", "an exec program"},
    {"LLMB_TASK", "an exec program"},
    {"LLMB_TASKS", "an exec program"},
    {"LLMB_ATTEMPT", "an exec program"},
    {"LLMB_TYPE", "an exec program"},
    {"LLMB_REPLACE_LIBRARY", NULL},
    {"LLMB_DEMO_BUILD_DIR", "scripts/demo"},
    {"LLMB_SKIP_IMAGE_TEST", "the test suite"},
    {"LLMB_BUILD_DIR", "the test suite"},
    {"LLMB_SOURCE_DIR", "the test suite"},
    {"LLMB_WORKER_BIN", "the test suite"},
    {"LLMB_COORDINATOR_BIN", "the test suite"},
    {"LLMB_FIXTURES", "the test suite"},
    {"LLMB_EXAMPLE_PLUGIN", "the test suite"},
    {"LLMB_MOCK_LLM", "the test suite"},
    {"LLMB_REDIS_SERVER", "the test suite"},
    {"LLMB_REDIS_CLI", "the test suite"},
    {"LLMB_FUZZ_SECONDS", "the test suite"},
    {"LLMB_LUAC", "the build"},
    {"LLMB_LUA_BUNDLE", "the build"},
    {"LLMB_TEST_", "the test suite"},
    {"LLMB_MODEL_", "the test suite"},
    {"LLMB_IMAGE_TEST_", "the test suite"},
};
#define NKNOWN_ENV (sizeof(known_env) / sizeof(known_env[0]))

/* Where a value came from, in rising precedence. */
enum layer { LAYER_DEFAULT, LAYER_FILE, LAYER_ENV, LAYER_FLAG };

/* One option set on the command line, applied after file and env. */
struct flag_value {
    size_t opt;
    const char *value;
};

/* The working state of one llmb_config_load() call. */
struct loader {
    const struct llmb_opt_set *set;
    void *cfg;
    size_t n;              /* options: common ones, then the program's */
    enum layer *layer;     /* per option: the source of its value */
    char **label;          /* per option: how to name it in messages */
    struct flag_value *fv; /* flags in argv order */
    size_t nfv;
    enum action act;
    char *err;             /* first error message */
};

static const struct llmb_opt *opt_at(const struct llmb_opt_set *set, size_t i)
{
    return i < NCOMMON ? &common_opts[i] : &set->opts[i - NCOMMON];
}

static size_t opt_count(const struct llmb_opt_set *set)
{
    return NCOMMON + set->nopts;
}

static void *field(void *cfg, const struct llmb_opt *o)
{
    return (char *)cfg + o->offset;
}

static const void *cfield(const void *cfg, const struct llmb_opt *o)
{
    return (const char *)cfg + o->offset;
}

static int fail(struct loader *l, const char *fmt, ...) LLMB_PRINTF(2, 3);
static void warn(const struct loader *l, const char *fmt, ...)
    LLMB_PRINTF(2, 3);

/* Records the first error; returns LLMB_ECONFIG for "return fail(...)". */
static int fail(struct loader *l, const char *fmt, ...)
{
    va_list ap;
    if (l->err == NULL) {
        va_start(ap, fmt);
        l->err = llmb_xvasprintf(fmt, ap);
        va_end(ap);
    }
    return LLMB_ECONFIG;
}

/* Prints "<prog>: warning: <message>" on stderr: the logger is not set up
 * while the configuration that chooses its level is being read. */
static void warn(const struct loader *l, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: warning: ", l->set->prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* The most edits between a mistyped name of len characters and the name
 * meant: one for short names, two for the rest. */
static size_t close_enough(size_t len)
{
    return len <= 5 ? 1 : 2;
}

/* Keeps cand as the suggestion when it is nearer to name than *best. */
static void consider(const char *name, size_t len, const char *prefix,
                     const char *cand, size_t *best, char *out, size_t cap)
{
    char full[96];
    size_t d;

    snprintf(full, sizeof(full), "%s%s", prefix, cand);
    d = llmb_edit_distance(name, len, full, strlen(full));
    /* A unique-looking start of a long name ("--dump") counts as close. */
    if (d > close_enough(len) && len >= 4 && strncmp(full, name, len) == 0)
        d = close_enough(len);
    if (d <= close_enough(len) && d < *best) {
        *best = d;
        snprintf(out, cap, "%s", full);
    }
}

static const char *metavar(const struct llmb_opt *o)
{
    if (o->metavar != NULL)
        return o->metavar;
    switch (o->type) {
    case LLMB_OPT_INT: return "N";
    case LLMB_OPT_LIST: return "A,B";
    case LLMB_OPT_BOOL: return "";
    case LLMB_OPT_STR: break;
    }
    return "VALUE";
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Writes "must be an integer ..." for option o into l. */
static int int_error(struct loader *l, const char *label,
                     const struct llmb_opt *o, const char *text)
{
    if (o->min == 0 && o->max == 0)
        return fail(l, "%s must be an integer, got \"%s\"", label, text);
    if (o->max == LLONG_MAX)
        return fail(l, "%s must be an integer >= %lld, got \"%s\"", label,
                    o->min, text);
    return fail(l, "%s must be an integer from %lld to %lld, got \"%s\"",
                label, o->min, o->max, text);
}

/* Stores text as the value of option i, coming from layer `layer`; label
 * names the source in error messages. Returns 0 or LLMB_ECONFIG. */
static int apply(struct loader *l, size_t i, enum layer layer,
                 const char *label, const char *text)
{
    const struct llmb_opt *o = opt_at(l->set, i);
    void *p = field(l->cfg, o);

    switch (o->type) {
    case LLMB_OPT_STR: {
        char **s = p;
        free(*s);
        *s = llmb_xstrdup(text);
        break;
    }
    case LLMB_OPT_INT: {
        long long min = o->min, max = o->max, v = 0;
        if (min == 0 && max == 0) {
            min = LLONG_MIN;
            max = LLONG_MAX;
        }
        if (llmb_parse_ll(text, min, max, &v) != 0)
            return int_error(l, label, o, text);
        *(long long *)p = v;
        break;
    }
    case LLMB_OPT_BOOL:
        if (parse_bool(text, (bool *)p) != 0)
            return fail(l, "%s must be true or false, got \"%s\"", label,
                        text);
        break;
    case LLMB_OPT_LIST: {
        struct llmb_strlist *list = p;
        if (l->layer[i] != layer)
            llmb_strlist_clear(list);
        llmb_strlist_split(list, text, ',');
        break;
    }
    }
    l->layer[i] = layer;
    free(l->label[i]);
    l->label[i] = llmb_xstrdup(label);
    return 0;
}

/* Sets every option to its default. Fields are overwritten, not freed. */
static void apply_defaults(struct loader *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct llmb_opt *o = opt_at(l->set, i);
        void *p = field(l->cfg, o);
        int rc = 0;

        switch (o->type) {
        case LLMB_OPT_STR:
            *(char **)p = NULL;
            break;
        case LLMB_OPT_INT:
            *(long long *)p = 0;
            break;
        case LLMB_OPT_BOOL:
            *(bool *)p = false;
            break;
        case LLMB_OPT_LIST:
            memset(p, 0, sizeof(struct llmb_strlist));
            break;
        }
        l->layer[i] = LAYER_DEFAULT;
        l->label[i] = llmb_xasprintf("--%s", o->name);
        if (o->def != NULL) {
            char *label = llmb_xstrdup(l->label[i]);
            rc = apply(l, i, LAYER_DEFAULT, label, o->def);
            free(label);
        }
        /* A default that does not parse is a bug in the table. */
        llmb_assert(rc == 0);
    }
}

static size_t find_long(const struct loader *l, const char *name, size_t len)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *n = opt_at(l->set, i)->name;
        if (strlen(n) == len && strncmp(n, name, len) == 0)
            return i;
    }
    return SIZE_MAX;
}

static size_t find_short(const struct loader *l, char c)
{
    for (size_t i = 0; i < l->n; i++)
        if (opt_at(l->set, i)->short_name == c)
            return i;
    return SIZE_MAX;
}

/* The index of the option that the deprecated alias name[0..len) sets,
 * after a warning; SIZE_MAX when it is no alias. */
static size_t find_alias(const struct loader *l, const char *name, size_t len,
                         bool flag)
{
    for (size_t a = 0; a < l->set->naliases; a++) {
        const struct llmb_opt_alias *al = &l->set->aliases[a];
        if (strlen(al->name) == len && strncmp(al->name, name, len) == 0) {
            size_t i = find_long(l, al->target, strlen(al->target));
            llmb_assert(i != SIZE_MAX);
            if (flag)
                warn(l, "--%s is deprecated; use --%s", al->name, al->target);
            else
                warn(l, "config key \"%s\" is deprecated; use \"%s\"",
                     al->name, al->target);
            return i;
        }
    }
    return SIZE_MAX;
}

/* Writes into out the option name nearest to the unknown name[0..len) (a
 * flag without its dashes, or a config key); returns false when none is
 * near. Aliases suggest what they stand for. */
static bool suggest(const struct loader *l, const char *name, size_t len,
                    bool flags, char *out, size_t cap)
{
    size_t best = SIZE_MAX;

    for (size_t i = 0; i < l->n; i++) {
        const struct llmb_opt *o = opt_at(l->set, i);
        consider(name, len, "", o->name, &best, out, cap);
        if (flags && o->type == LLMB_OPT_BOOL)
            consider(name, len, "no-", o->name, &best, out, cap);
    }
    for (size_t a = 0; a < l->set->naliases; a++) {
        size_t before = best;
        consider(name, len, "", l->set->aliases[a].name, &best, out, cap);
        if (best != before)
            snprintf(out, cap, "%s", l->set->aliases[a].target);
    }
    for (size_t k = 0; flags && k < NACTIONS; k++)
        consider(name, len, "", actions[k].name, &best, out, cap);
    return best != SIZE_MAX;
}

static enum action find_action(const char *name, size_t len, char c)
{
    for (size_t i = 0; i < NACTIONS; i++) {
        if (c != 0 ? actions[i].short_name == c
                   : (strlen(actions[i].name) == len &&
                      strncmp(actions[i].name, name, len) == 0))
            return actions[i].act;
    }
    return ACT_NONE;
}

static void push_flag(struct loader *l, size_t opt, const char *value)
{
    l->fv = llmb_xrealloc(l->fv, (l->nfv + 1) * sizeof(*l->fv));
    l->fv[l->nfv].opt = opt;
    l->fv[l->nfv].value = value;
    l->nfv++;
}

/* Parses "--name[=value]" (arg without the dashes) at argv[*k]. */
static int parse_long(struct loader *l, const char *arg, int argc,
                      char **argv, int *k)
{
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    size_t i = find_long(l, arg, len);
    enum action act = find_action(arg, len, 0);

    if (act != ACT_NONE) {
        if (eq != NULL)
            return fail(l, "--%.*s takes no value", (int)len, arg);
        if (l->act == ACT_NONE)
            l->act = act;
        return 0;
    }
    if (i == SIZE_MAX && len > 3 && strncmp(arg, "no-", 3) == 0) {
        size_t j = find_long(l, arg + 3, len - 3);
        if (j != SIZE_MAX && opt_at(l->set, j)->type == LLMB_OPT_BOOL) {
            if (eq != NULL)
                return fail(l, "--%.*s takes no value", (int)len, arg);
            push_flag(l, j, "false");
            return 0;
        }
    }
    if (i == SIZE_MAX)
        i = find_alias(l, arg, len, true);
    if (i == SIZE_MAX) {
        char near[96];
        if (suggest(l, arg, len, true, near, sizeof(near)))
            return fail(l, "unknown option \"--%.*s\"; did you mean --%s? "
                        "See %s --help", (int)len, arg, near, l->set->prog);
        return fail(l, "unknown option \"--%.*s\"; see %s --help", (int)len,
                    arg, l->set->prog);
    }
    if (eq != NULL) {
        push_flag(l, i, eq + 1);
    } else if (opt_at(l->set, i)->type == LLMB_OPT_BOOL) {
        push_flag(l, i, "true");
    } else {
        if (*k + 1 >= argc)
            return fail(l, "--%.*s needs a value (%s)", (int)len, arg,
                        metavar(opt_at(l->set, i)));
        push_flag(l, i, argv[++*k]);
    }
    return 0;
}

/* Parses "-x", "-x value" or "-xvalue" (arg without the dash). */
static int parse_short(struct loader *l, const char *arg, int argc,
                       char **argv, int *k)
{
    size_t i = find_short(l, arg[0]);
    enum action act = find_action(NULL, 0, arg[0]);

    if (act != ACT_NONE && arg[1] == '\0') {
        if (l->act == ACT_NONE)
            l->act = act;
        return 0;
    }
    if (i == SIZE_MAX || act != ACT_NONE)
        return fail(l, "unknown option \"-%s\"; see %s --help", arg,
                    l->set->prog);
    if (opt_at(l->set, i)->type == LLMB_OPT_BOOL) {
        if (arg[1] != '\0')
            return fail(l, "-%c takes no value, got \"-%s\"", arg[0], arg);
        push_flag(l, i, "true");
    } else if (arg[1] != '\0') {
        push_flag(l, i, arg + 1);
    } else {
        if (*k + 1 >= argc)
            return fail(l, "-%c needs a value (%s)", arg[0],
                        metavar(opt_at(l->set, i)));
        push_flag(l, i, argv[++*k]);
    }
    return 0;
}

/* Sorts argv[1..] into flags (l->fv, unapplied) and positionals. Stops at
 * the first --help or --version, which need nothing else. */
static int parse_argv(struct loader *l, int argc, char **argv,
                      struct llmb_strlist *positional)
{
    bool options_done = false;

    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];
        int rc = 0;

        if (options_done || a[0] != '-' || a[1] == '\0') {
            if (positional == NULL)
                return fail(l, "unexpected argument \"%s\"; see %s --help", a,
                            l->set->prog);
            llmb_strlist_push(positional, a);
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        if (a[1] == '-')
            rc = parse_long(l, a + 2, argc, argv, &k);
        else
            rc = parse_short(l, a + 1, argc, argv, &k);
        if (rc != 0)
            return rc;
        if (l->act == ACT_HELP || l->act == ACT_VERSION ||
            l->act == ACT_MARKDOWN)
            return 0;
    }
    return 0;
}

static char *trim(char *s)
{
    char *end;
    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
                       end[-1] == '\r' || end[-1] == '\n'))
        *--end = '\0';
    return s;
}

/* Reads the config file at path into the FILE layer. */
static int load_file(struct loader *l, const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;

    if (f == NULL)
        return fail(l, "cannot read config file %s: %s", path,
                    strerror(errno));
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        char *s = trim(line), *eq, *key, *val, *label;
        size_t i, vlen;

        lineno++;
        if (*s == '\0' || *s == '#')
            continue;
        eq = strchr(s, '=');
        if (eq == NULL) {
            rc = fail(l, "config file %s:%d: expected \"key = value\", got "
                      "\"%s\"", path, lineno, s);
            break;
        }
        *eq = '\0';
        key = trim(s);
        val = trim(eq + 1);
        vlen = strlen(val);
        if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') {
            val[vlen - 1] = '\0';
            val++;
        }
        i = find_long(l, key, strlen(key));
        if (i == SIZE_MAX)
            i = find_alias(l, key, strlen(key), false);
        if (i == SIZE_MAX) {
            char near[96];
            if (suggest(l, key, strlen(key), false, near, sizeof(near)))
                rc = fail(l, "config file %s:%d: unknown key \"%s\"; did you "
                          "mean \"%s\"?", path, lineno, key, near);
            else
                rc = fail(l, "config file %s:%d: unknown key \"%s\"", path,
                          lineno, key);
            break;
        }
        if (i == OPT_CONFIG) {
            rc = fail(l, "config file %s:%d: \"config\" cannot be set in a "
                      "config file", path, lineno);
            break;
        }
        label = llmb_xasprintf("config file %s:%d: %s", path, lineno, key);
        rc = apply(l, i, LAYER_FILE, label, val);
        free(label);
    }
    if (rc == 0 && ferror(f))
        rc = fail(l, "cannot read config file %s: %s", path, strerror(errno));
    free(line);
    fclose(f);
    return rc;
}

static int load_env(struct loader *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct llmb_opt *o = opt_at(l->set, i);
        const char *v = o->env ? getenv(o->env) : NULL;
        if (v != NULL && *v != '\0' && apply(l, i, LAYER_ENV, o->env, v) != 0)
            return LLMB_ECONFIG;
    }
    /* Old variables: read when the new one is unset. */
    for (size_t a = 0; a < l->set->naliases; a++) {
        const struct llmb_opt_alias *al = &l->set->aliases[a];
        const char *v = al->env ? getenv(al->env) : NULL;
        size_t i;
        if (v == NULL || *v == '\0')
            continue;
        i = find_long(l, al->target, strlen(al->target));
        llmb_assert(i != SIZE_MAX && opt_at(l->set, i)->env != NULL);
        if (l->layer[i] == LAYER_ENV) {
            warn(l, "%s is ignored: it is the old name of %s, which is set",
                 al->env, opt_at(l->set, i)->env);
            continue;
        }
        warn(l, "%s is deprecated; use %s", al->env, opt_at(l->set, i)->env);
        if (apply(l, i, LAYER_ENV, al->env, v) != 0)
            return LLMB_ECONFIG;
    }
    return 0;
}

/* True when some STR or LIST value of the configuration names the
 * variable (an llm endpoint's key_env=VAR): the program reads it then. */
static bool named_by_value(const struct loader *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct llmb_opt *o = opt_at(l->set, i);
        const void *p = cfield(l->cfg, o);
        if (o->type == LLMB_OPT_STR && *(char *const *)p != NULL &&
            strstr(*(char *const *)p, name) != NULL)
            return true;
        if (o->type == LLMB_OPT_LIST) {
            const struct llmb_strlist *list = p;
            for (size_t k = 0; k < list->n; k++)
                if (strstr(list->v[k], name) != NULL)
                    return true;
        }
    }
    return false;
}

/* Warns about one set LLMB_* variable, name[0..len), that this program
 * does not read: always when no llmb program reads it, else only when it
 * looks like one of this program's variables. */
static void check_env_var(const struct loader *l, const char *name,
                          size_t len)
{
    const char *mine = NULL, *reader = NULL;
    size_t best = SIZE_MAX;
    bool known = false;
    char var[128];

    for (size_t a = 0; a < l->set->naliases; a++) {
        const char *env = l->set->aliases[a].env;
        if (env != NULL && strlen(env) == len && strncmp(env, name, len) == 0)
            return; /* an old name, read with its own warning */
    }
    for (size_t i = 0; i < l->n; i++) {
        const char *env = opt_at(l->set, i)->env;
        size_t d;
        if (env == NULL)
            continue;
        if (strlen(env) == len && strncmp(env, name, len) == 0)
            return; /* read by this program */
        d = llmb_edit_distance(name + 5, len - 5, env + 5, strlen(env) - 5);
        if (d <= close_enough(len - 5) && d < best) {
            best = d;
            mine = env;
        }
    }
    for (size_t k = 0; k < NKNOWN_ENV && !known; k++) {
        const char *e = known_env[k].env;
        size_t elen = strlen(e);
        if (e[elen - 1] == '_' ? (len > elen && strncmp(name, e, elen) == 0)
                               : (len == elen && strncmp(name, e, len) == 0)) {
            known = true;
            reader = known_env[k].reader;
        }
    }
    snprintf(var, sizeof(var), "%.*s", (int)len, name);
    if (known && reader == NULL)
        return;
    if (named_by_value(l, var))
        return;
    if (known && mine != NULL)
        warn(l, "%s reads %s, not %s (that one is %s's)", l->set->prog, mine,
             var, reader);
    else if (!known && mine != NULL)
        warn(l, "%s is set, but no llmb program reads it; did you mean %s?",
             var, mine);
    else if (!known)
        warn(l, "%s is set, but no llmb program reads it", var);
}

/* Warns about the set LLMB_* variables that this program does not read. */
static void check_env(const struct loader *l)
{
    extern char **environ;

    for (char **e = environ; e != NULL && *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, "LLMB_", 5) != 0 || eq == NULL || eq[1] == '\0' ||
            eq - *e <= 5)
            continue;
        check_env_var(l, *e, (size_t)(eq - *e));
    }
}

static int load_flags(struct loader *l)
{
    for (size_t k = 0; k < l->nfv; k++) {
        const struct llmb_opt *o = opt_at(l->set, l->fv[k].opt);
        char *label = llmb_xasprintf("--%s", o->name);
        int rc = apply(l, l->fv[k].opt, LAYER_FLAG, label, l->fv[k].value);
        free(label);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Checks the common options that have a shape beyond their type. */
static int check_common(struct loader *l)
{
    const struct llmb_common *c = l->cfg;
    struct llmb_redis_url url;
    enum llmb_log_level level;
    char *uerr = NULL;

    if (c->prefix == NULL || *c->prefix == '\0' ||
        strspn(c->prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                          "0123456789_.:-") != strlen(c->prefix))
        return fail(l, "%s must be letters, digits and _ . : - only, got "
                    "\"%s\"", l->label[OPT_PREFIX], c->prefix ? c->prefix : "");
    if (llmb_log_level_parse(c->log_level, &level) != 0)
        return fail(l, "%s must be debug, info, warn or error, got \"%s\"",
                    l->label[OPT_LOG_LEVEL], c->log_level ? c->log_level : "");
    if (llmb_redis_url_parse(c->redis_url, &url, &uerr) != 0) {
        fail(l, "%s: %s", l->label[OPT_REDIS], uerr);
        free(uerr);
        return LLMB_ECONFIG;
    }
    if (url.cluster && !l->set->cluster) {
        /* A program whose calls do not go through the router (lib/
         * cluster.c): one node of a cluster would answer MOVED for most
         * queues. Refuse rather than half work. */
        llmb_redis_url_fini(&url);
        return fail(l, "%s: %s does not take a redis+cluster:// URL yet; "
                    "see docs/operations.md, Redis Cluster",
                    l->label[OPT_REDIS], l->set->prog);
    }
    llmb_redis_url_fini(&url);
    if (c->wait_replicas > 0) {
        /* A WAIT holds its connection: one as long as a command may take
         * would make the commands behind it time out. */
        size_t t = find_long(l, "redis-timeout-ms", 16);
        size_t w = find_long(l, "wait-replicas-ms", 16);
        const struct llmb_opt *to = t != SIZE_MAX ? opt_at(l->set, t) : NULL;
        if (to != NULL && to->type == LLMB_OPT_INT &&
            c->wait_replicas_ms >= *(const long long *)field(l->cfg, to))
            return fail(l, "%s (%lld) must be less than %s (%lld): a WAIT "
                        "holds its connection, and the commands behind it "
                        "would time out", l->label[w], c->wait_replicas_ms,
                        l->label[t], *(const long long *)field(l->cfg, to));
    }
    /* The connection layer acknowledges writes process-wide. */
    llmb_write_ack.replicas = c->wait_replicas;
    llmb_write_ack.timeout_ms = c->wait_replicas_ms;
    return 0;
}

/* Programmer errors in a table: duplicate names or shorts. */
static void check_table(const struct loader *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct llmb_opt *o = opt_at(l->set, i);
        llmb_assert(o->name != NULL && o->help != NULL);
        llmb_assert(find_long(l, o->name, strlen(o->name)) == i);
        llmb_assert(find_action(o->name, strlen(o->name), 0) == ACT_NONE);
        if (o->short_name != 0) {
            llmb_assert(find_short(l, o->short_name) == i);
            llmb_assert(find_action(NULL, 0, o->short_name) == ACT_NONE);
        }
    }
}

int llmb_config_load(const struct llmb_opt_set *set, void *cfg, int argc,
                     char **argv, struct llmb_strlist *positional,
                     char **errstr)
{
    struct loader l;
    const char *path = NULL;
    int rc = 0;

    memset(&l, 0, sizeof(l));
    l.set = set;
    l.cfg = cfg;
    l.n = opt_count(set);
    l.layer = llmb_xcalloc(l.n, sizeof(*l.layer));
    l.label = llmb_xcalloc(l.n, sizeof(*l.label));
    if (errstr != NULL)
        *errstr = NULL;

    check_table(&l);
    apply_defaults(&l);

    rc = parse_argv(&l, argc, argv, positional);
    if (rc != 0)
        goto out;
    if (l.act == ACT_HELP) {
        llmb_config_help(set, stdout);
        rc = 1;
        goto out;
    }
    if (l.act == ACT_MARKDOWN) {
        llmb_config_markdown(set, stdout);
        rc = 1;
        goto out;
    }
    if (l.act == ACT_VERSION) {
        printf("%s %s (lua library %lld)\n", set->prog, LLMB_VERSION_STRING,
               llmb_lua_version);
        rc = 1;
        goto out;
    }

    /* The file's own path comes from the flags, else the environment. */
    for (size_t k = 0; k < l.nfv; k++)
        if (l.fv[k].opt == OPT_CONFIG)
            path = l.fv[k].value;
    if (path == NULL && getenv(ENV_CONFIG) != NULL && *getenv(ENV_CONFIG))
        path = getenv(ENV_CONFIG);
    if (path == NULL)
        path = common_opts[OPT_CONFIG].def;

    if ((path != NULL && (rc = load_file(&l, path)) != 0) ||
        (rc = load_env(&l)) != 0 || (rc = load_flags(&l)) != 0 ||
        (rc = check_common(&l)) != 0)
        goto out;
    check_env(&l);

    if (l.act == ACT_DUMP) {
        llmb_config_dump(set, cfg, stdout);
        rc = 1;
    }

out:
    if (rc < 0 && errstr != NULL)
        *errstr = l.err ? l.err : llmb_xstrdup("bad configuration");
    else
        free(l.err);
    if (rc == 1)
        fflush(stdout);
    for (size_t i = 0; i < l.n; i++)
        free(l.label[i]);
    free(l.label);
    free(l.layer);
    free(l.fv);
    return rc;
}

void llmb_config_free(const struct llmb_opt_set *set, void *cfg)
{
    for (size_t i = 0; i < opt_count(set); i++) {
        const struct llmb_opt *o = opt_at(set, i);
        void *p = field(cfg, o);
        if (o->type == LLMB_OPT_STR) {
            free(*(char **)p);
            *(char **)p = NULL;
        } else if (o->type == LLMB_OPT_LIST) {
            llmb_strlist_clear(p);
        }
    }
}

/* Prints text wrapped at 78 columns, each line indented by `indent`. */
static void wrap(FILE *out, const char *text, int indent)
{
    const int width = 78;
    int col = 0;
    const char *p = text;

    while (*p != '\0') {
        size_t w = strcspn(p, " ");
        if (col > indent && col + 1 + (int)w > width) {
            fputc('\n', out);
            col = 0;
        }
        if (col == 0) {
            fprintf(out, "%*s", indent, "");
            col = indent;
        } else {
            fputc(' ', out);
            col++;
        }
        fwrite(p, 1, w, out);
        col += (int)w;
        p += w;
        while (*p == ' ')
            p++;
    }
    if (col > 0)
        fputc('\n', out);
}

/* Appends " --old (deprecated) works too." for each alias of o. */
static void append_aliases(const struct llmb_opt_set *set,
                           const struct llmb_opt *o, struct llmb_buf *b)
{
    for (size_t a = 0; a < set->naliases; a++) {
        const struct llmb_opt_alias *al = &set->aliases[a];
        if (strcmp(al->target, o->name) != 0)
            continue;
        if (al->env != NULL)
            llmb_buf_appendf(b, " --%s and %s (deprecated) work too.",
                             al->name, al->env);
        else
            llmb_buf_appendf(b, " --%s (deprecated) works too.", al->name);
    }
}

/* Prints one option of --help: the flag line, then the wrapped text. */
static void help_opt(FILE *out, const struct llmb_opt_set *set,
                     const struct llmb_opt *o, struct llmb_buf *b)
{
    char shortbuf[8] = "    ";

    if (o->short_name != 0)
        snprintf(shortbuf, sizeof(shortbuf), "-%c, ", o->short_name);
    if (o->type == LLMB_OPT_BOOL)
        fprintf(out, "  %s--[no-]%s\n", shortbuf, o->name);
    else
        fprintf(out, "  %s--%s %s\n", shortbuf, o->name, metavar(o));

    llmb_buf_reset(b);
    llmb_buf_appendf(b, "%s", o->help);
    if (o->type == LLMB_OPT_LIST)
        llmb_buf_appendf(b, " Comma-separated; the flag may repeat.");
    append_aliases(set, o, b);
    if (o->env != NULL)
        llmb_buf_appendf(b, " [env: %s]", o->env);
    if (o->def != NULL && *o->def != '\0')
        llmb_buf_appendf(b, " [default: %s]", o->def);
    wrap(out, b->data, 8);
}

void llmb_config_help(const struct llmb_opt_set *set, FILE *out)
{
    struct llmb_buf b;

    llmb_buf_init(&b);
    fprintf(out, "Usage: %s %s\n", set->prog,
            set->usage ? set->usage : "[OPTIONS]");
    if (set->summary != NULL) {
        fputc('\n', out);
        wrap(out, set->summary, 0);
    }
    if (set->nopts > 0) {
        fprintf(out, "\nOptions:\n");
        for (size_t i = 0; i < set->nopts; i++)
            help_opt(out, set, &set->opts[i], &b);
    }
    fprintf(out, "\nCommon options:\n");
    for (size_t i = 0; i < NCOMMON; i++)
        help_opt(out, set, &common_opts[i], &b);
    for (size_t i = 0; i < NACTIONS; i++) {
        if (actions[i].short_name != 0)
            fprintf(out, "  -%c, --%s\n", actions[i].short_name,
                    actions[i].name);
        else
            fprintf(out, "      --%s\n", actions[i].name);
        wrap(out, actions[i].help, 8);
    }
    fprintf(out, "\nPrecedence: flags > environment > config file > "
                 "defaults.\n");
    llmb_buf_fini(&b);
}

/* Appends the value of o in cfg as config-file text (unquoted). Returns
 * false when the option is unset. */
static bool value_text(const struct llmb_opt *o, const void *cfg,
                       struct llmb_buf *b)
{
    const void *p = cfield(cfg, o);

    switch (o->type) {
    case LLMB_OPT_STR: {
        const char *s = *(char *const *)p;
        if (s == NULL)
            return false;
        if (o->secret && strstr(s, "://") != NULL) {
            char *r = llmb_redis_url_redacted(s);
            llmb_buf_appendf(b, "%s", r);
            free(r);
        } else if (o->secret && *s != '\0') {
            llmb_buf_appendf(b, "***");
        } else {
            llmb_buf_appendf(b, "%s", s);
        }
        return true;
    }
    case LLMB_OPT_INT:
        llmb_buf_appendf(b, "%lld", *(const long long *)p);
        return true;
    case LLMB_OPT_BOOL:
        llmb_buf_appendf(b, "%s", *(const bool *)p ? "true" : "false");
        return true;
    case LLMB_OPT_LIST: {
        const struct llmb_strlist *list = p;
        for (size_t k = 0; k < list->n; k++)
            llmb_buf_appendf(b, "%s%s", k ? "," : "", list->v[k]);
        return true;
    }
    }
    return false;
}

void llmb_config_dump(const struct llmb_opt_set *set, const void *cfg,
                      FILE *out)
{
    const struct llmb_common *c = cfg;
    struct llmb_buf b;

    llmb_buf_init(&b);
    fprintf(out, "# %s configuration", set->prog);
    if (c->config_file != NULL)
        fprintf(out, " (config file: %s)", c->config_file);
    fprintf(out, "\n# precedence: flags > environment > config file > "
                 "defaults\n");
    for (size_t i = 0; i < opt_count(set); i++) {
        const struct llmb_opt *o = opt_at(set, i);
        bool has_value;

        if (i == OPT_CONFIG)
            continue;
        fprintf(out, "\n# %s\n", o->help);
        llmb_buf_reset(&b);
        has_value = value_text(o, cfg, &b);
        if (!has_value)
            fprintf(out, "# %s =\n", o->name);
        else if (b.len > 0 && (b.data[0] == ' ' || b.data[0] == '"' ||
                               b.data[b.len - 1] == ' '))
            fprintf(out, "%s = \"%s\"\n", o->name, b.data);
        else
            fprintf(out, "%s = %s\n", o->name, b.data);
    }
    llmb_buf_fini(&b);
}

/* Writes s with the characters markdown tables care about escaped. */
static void md_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else
            fputc(*s, out);
    }
}

void llmb_config_markdown(const struct llmb_opt_set *set, FILE *out)
{
    struct llmb_buf b;

    llmb_buf_init(&b);
    fprintf(out, "| flag | env | default | range | meaning |\n");
    fprintf(out, "| --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < opt_count(set); i++) {
        const struct llmb_opt *o = opt_at(set, i);

        fputs("| ", out);
        if (o->short_name != 0)
            fprintf(out, "`-%c`, ", o->short_name);
        if (o->type == LLMB_OPT_BOOL)
            fprintf(out, "`--[no-]%s`", o->name);
        else
            fprintf(out, "`--%s %s`", o->name, metavar(o));
        fprintf(out, " | %s%s%s | ", o->env ? "`" : "", o->env ? o->env : "",
                o->env ? "`" : "");
        if (o->def != NULL && *o->def != '\0') {
            fputc('`', out);
            md_text(out, o->def);
            fputc('`', out);
        }
        fputs(" | ", out);
        if (o->type == LLMB_OPT_INT && o->max == LLONG_MAX)
            fprintf(out, "%lld..", o->min);
        else if (o->type == LLMB_OPT_INT && (o->min != 0 || o->max != 0))
            fprintf(out, "%lld..%lld", o->min, o->max);
        fputs(" | ", out);
        md_text(out, o->help);
        if (o->type == LLMB_OPT_LIST)
            fputs(" Comma-separated; the flag may repeat.", out);
        llmb_buf_reset(&b);
        append_aliases(set, o, &b);
        if (b.len > 0)
            md_text(out, b.data);
        fputs(" |\n", out);
    }
    llmb_buf_fini(&b);
    for (size_t i = 0; i < NACTIONS; i++) {
        fputs("| ", out);
        if (actions[i].short_name != 0)
            fprintf(out, "`-%c`, ", actions[i].short_name);
        fprintf(out, "`--%s` |  |  |  | %s |\n", actions[i].name,
                actions[i].help);
    }
}
