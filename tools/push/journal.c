/*
 * The ids llmb-push gives its jobs, and the journal that lets a re-run of
 * the same input finish an unfinished run without pushing a job twice.
 *
 * Every job that names no id gets one here: the run's nonce (64 random
 * bits as 13 base-36 digits) and the job's line number in the input in
 * base 36, "<nonce>-<line>" (line 1 for a single job): every id is
 * stored several times per job, so every character counts. A journal of
 * an older release holds a nonce of 16 or 24 hex digits, whose run wrote
 * its line numbers in decimal: a run that resumes it does the same. Pushing an id that exists answers that job
 * and changes nothing (ids_resolve in lua/20-push.lua), so a run that
 * uses the nonce of an earlier run stores only the jobs the earlier run
 * did not.
 *
 * Before its first call a run opens its journal, a small text file in the
 * state directory named by the SHA-256 of what identifies the run (kind,
 * prefix, queue, and the SHA-256 of the input bytes), and holds an
 * exclusive flock on it while it runs. The Redis server is not part of the
 * name: the same server reached by another name is still resumed, and an
 * id reused on a server where it does not exist only makes that job. The
 * file holds the nonce. If it was there already, an earlier run of the
 * same input did not finish (it lost its connection, timed out, or was
 * killed): this run takes its nonce and says so. A run that ends with every job confirmed or
 * refused deletes the file, so the next run of the same input mints a
 * fresh nonce and pushes new jobs, as pushing twice on purpose should;
 * a run that ends with jobs not confirmed keeps it and adds a line saying
 * how it ended.
 *
 * Nothing here stops a run: when the journal cannot be kept (no state
 * directory, another run of the same input holds it, --no-journal) the run
 * goes on with a fresh nonce and push_journal_kept() says so, for the
 * messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <llmb/url.h>

#include "push.h"

#define MAGIC "llmb-push journal 1\n"

static const char B36[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/* Fills j's nonce with 64 random bits as PUSH_NONCE_LEN base-36 digits
 * (36^13 > 2^64), leading zeros kept. Without a random source no id of
 * this run could be told from another run's: abort. */
static void nonce_new(struct push_journal *j)
{
    char hex[17];
    unsigned long long v;
    int rc = llmb_random_hex(hex, 8), i;

    llmb_assert(rc == 0);
    v = strtoull(hex, NULL, 16);
    for (i = PUSH_NONCE_LEN - 1; i >= 0; i--) {
        j->nonce[i] = B36[v % 36];
        v /= 36;
    }
    j->nonce[PUSH_NONCE_LEN] = '\0';
    j->nonce_len = PUSH_NONCE_LEN;
    j->hex_nonce = false;
}

void push_id_mint(const struct push_journal *j, long number,
                  char id[PUSH_ID_MAX])
{
    char rev[24];
    char *p = id + j->nonce_len;
    unsigned long n = (unsigned long)number;
    int k = 0;

    if (j->hex_nonce) {
        snprintf(id, PUSH_ID_MAX, "%s-%ld", j->nonce, number);
        return;
    }
    memcpy(id, j->nonce, j->nonce_len);
    *p++ = '-';
    do {
        rev[k++] = B36[n % 36];
        n /= 36;
    } while (n > 0);
    while (k > 0)
        *p++ = rev[--k];
    *p = '\0';
}

bool push_journal_kept(const struct push_journal *j)
{
    return j->fd >= 0;
}

/* The state directory: --state-dir, else $XDG_STATE_HOME/llmb, else
 * ~/.local/state/llmb; created (mode 0700) if missing. Returns a malloc'd
 * path, or NULL with a malloc'd reason in *why. */
static char *state_dir(const struct push_config *cfg, char **why)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char *dir;
    char *p;
    char c;

    if (cfg->state_dir != NULL && cfg->state_dir[0] != '\0')
        dir = llmb_xstrdup(cfg->state_dir);
    else if (xdg != NULL && xdg[0] == '/')
        dir = llmb_xasprintf("%s/llmb", xdg);
    else if (home != NULL && home[0] == '/')
        dir = llmb_xasprintf("%s/.local/state/llmb", home);
    else {
        *why = llmb_xstrdup("neither --state-dir, XDG_STATE_HOME nor HOME "
                            "names a directory");
        return NULL;
    }
    /* mkdir -p */
    for (p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        c = *p;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            *why = llmb_xasprintf("cannot create %s: %s", dir,
                                  strerror(errno));
            free(dir);
            return NULL;
        }
        *p = c;
        if (c == '\0')
            break;
    }
    return dir;
}

/* Opens path and takes its lock, making the file if needed. Returns the
 * descriptor; -1 with *busy set when another run holds the lock; -1 with
 * a malloc'd reason in *why on an error. */
static int lock_open(const char *path, bool *busy, char **why)
{
    int tries;

    for (tries = 0; tries < 10; tries++) {
        struct stat a, b;
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

        if (fd < 0) {
            *why = llmb_xasprintf("cannot open %s: %s", path, strerror(errno));
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            close(fd);
            if (e == EWOULDBLOCK) {
                *busy = true;
                return -1;
            }
            *why = llmb_xasprintf("cannot lock %s: %s", path, strerror(e));
            return -1;
        }
        /* The run that held it may have deleted it in between: the lock
         * counts only on the file that still has this name. */
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino)
            return fd;
        close(fd);
    }
    *why = llmb_xasprintf("%s keeps changing", path);
    return -1;
}

/* Reads all of fd into out. Returns 0 or -1 (errno set). */
static int read_all(int fd, struct llmb_buf *out)
{
    char chunk[4096];
    ssize_t n;

    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        llmb_buf_append(out, chunk, (size_t)n);
    }
    return 0;
}

/* The value of the line of text starting with "name " (up to the end of
 * the line), copied into out of n bytes; 0 when found, else -1. */
static int field(const char *text, const char *name, char *out, size_t n)
{
    size_t len = strlen(name);
    const char *p = text;

    while (p != NULL && *p != '\0') {
        if (strncmp(p, name, len) == 0 && p[len] == ' ') {
            size_t v = strcspn(p + len + 1, "\n");
            if (v >= n)
                return -1;
            memcpy(out, p + len + 1, v);
            out[v] = '\0';
            return 0;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return -1;
}

/* Replaces the file's content with text. Returns 0 or -1 (errno set). */
static int rewrite(int fd, const char *text, size_t len)
{
    size_t off = 0;

    while (off < len) {
        ssize_t n = pwrite(fd, text + off, len - off, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        off += (size_t)n;
    }
    return ftruncate(fd, (off_t)len);
}

static void format_time(long long ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL ||
        strftime(out, n, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
        snprintf(out, n, "%lld ms", ms);
}

/* The nonce of an earlier run from its journal text, checked against the
 * input line this run would write, into j: PUSH_NONCE_LEN base-36 digits,
 * or an older release's 16 or 24 hex digits. Returns 0, or -1 with a
 * malloc'd reason in *why. */
static int resume_parse(const char *text, const char *input_line,
                        struct push_journal *j, char **why)
{
    char v[256];
    size_t i, n;
    bool hex;

    if (strncmp(text, MAGIC, strlen(MAGIC)) != 0) {
        *why = llmb_xstrdup("it is not an llmb-push journal of this version");
        return -1;
    }
    if (field(text, "nonce", v, sizeof(v)) != 0)
        goto bad;
    n = strlen(v);
    if (n != PUSH_NONCE_LEN && n != 16 && n != PUSH_NONCE_MAX)
        goto bad;
    hex = n != PUSH_NONCE_LEN;
    for (i = 0; i < n; i++)
        if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f') ||
              (!hex && v[i] >= 'g' && v[i] <= 'z')))
            goto bad;
    if (strstr(text, input_line) == NULL) {
        *why = llmb_xstrdup("it is the journal of another input");
        return -1;
    }
    memcpy(j->nonce, v, n + 1);
    j->nonce_len = n;
    j->hex_nonce = hex;
    return 0;
bad:
    *why = llmb_xstrdup("it has no valid nonce line");
    return -1;
}

/* Says on stderr that this run resumes the run of journal text. */
static void resume_say(const char *text, const char *path)
{
    char started[64] = "", ended[512] = "", when[64] = "an unknown time";
    long long ms;

    if (field(text, "started", started, sizeof(started)) == 0 &&
        sscanf(started, "%lld", &ms) == 1)
        format_time(ms, when, sizeof(when));
    if (field(text, "ended", ended, sizeof(ended)) == 0) {
        /* "<ms> <counts>; first not confirmed: <id> in queue <q>" */
        char *what = strchr(ended, ' ');
        ended[strcspn(ended, ";")] = '\0';
        fprintf(stderr, "llmb-push: resuming an earlier run that did not "
                        "finish (started %s; it ended with %s): the jobs it "
                        "stored are answered as existing, not pushed again "
                        "(journal %s)\n",
                when, what != NULL ? what + 1 : "?", path);
    } else {
        fprintf(stderr, "llmb-push: resuming an earlier run that did not "
                        "finish (started %s; it stopped before it could "
                        "report): the jobs it stored are answered as "
                        "existing, not pushed again (journal %s)\n",
                when, path);
    }
}

void push_journal_open(struct push_journal *j, const struct push_config *cfg,
                       const char *kind, const char *queue,
                       const char *input_sha256, unsigned long long bytes,
                       const char *source)
{
    struct llmb_redis_url url;
    struct llmb_sha256 h;
    char key_hex[LLMB_SHA256_HEX + 1];
    char *server = NULL, *dir = NULL, *why = NULL, *input_line = NULL;
    struct llmb_buf key, old;
    bool busy = false;

    memset(j, 0, sizeof(*j));
    j->fd = -1;
    llmb_buf_init(&j->text);
    nonce_new(j);
    if (!cfg->journal)
        return;

    /* The server, for the reader of the file (without user and
     * password). */
    if (llmb_redis_url_parse(cfg->common.redis_url, &url, NULL) == 0) {
        char *addr = llmb_redis_url_address(&url);
        server = llmb_xasprintf("%s db %d", addr, url.db);
        free(addr);
        llmb_redis_url_fini(&url);
    } else {
        server = llmb_xstrdup("?");
    }
    input_line = llmb_xasprintf("input %s %llu bytes\n", input_sha256, bytes);
    llmb_buf_init(&key);
    llmb_buf_appendf(&key, MAGIC "kind %s\nprefix %s\nqueue %s\n%s", kind,
                     cfg->common.prefix, queue, input_line);
    llmb_sha256_init(&h);
    llmb_sha256_update(&h, key.data, key.len);
    llmb_sha256_final(&h, key_hex);
    llmb_buf_fini(&key);

    dir = state_dir(cfg, &why);
    if (dir == NULL)
        goto off;
    j->path = llmb_xasprintf("%s/push-%s.journal", dir, key_hex);
    j->fd = lock_open(j->path, &busy, &why);
    if (j->fd < 0 && busy) {
        /* Another run of the same input is going on: it owns the journal.
         * This run is a run of its own, with ids of its own. */
        fprintf(stderr, "llmb-push: another run of the same input is going "
                        "on (%s is locked); this run pushes its jobs as new "
                        "ones and keeps no journal\n", j->path);
        goto done;
    }
    if (j->fd < 0)
        goto off;

    llmb_buf_init(&old);
    if (read_all(j->fd, &old) != 0) {
        /* leave it as it is: it may hold the nonce of an earlier run */
        why = llmb_xasprintf("cannot read %s: %s", j->path, strerror(errno));
        llmb_buf_fini(&old);
        close(j->fd);
        j->fd = -1;
        goto off;
    }
    if (old.len > 0) {
        char *bad = NULL;
        if (resume_parse(old.data, input_line, j, &bad) == 0) {
            char *nl;
            j->resumed = true;
            resume_say(old.data, j->path);
            /* keep what it says, less how it ended */
            nl = strstr(old.data, "\nended ");
            llmb_buf_append(&j->text, old.data,
                            nl != NULL ? (size_t)(nl - old.data) + 1
                                       : old.len);
        } else {
            fprintf(stderr, "llmb-push: ignoring %s: %s\n", j->path, bad);
            free(bad);
        }
    }
    llmb_buf_fini(&old);
    if (!j->resumed) {
        llmb_buf_appendf(&j->text,
                         MAGIC "nonce %s\n%skind %s\nredis %s\nprefix %s\n"
                         "queue %s\nsource %s\nstarted %lld pid %ld\n",
                         j->nonce, input_line, kind, server,
                         cfg->common.prefix, queue, source,
                         (long long)llmb_now_ms(), (long)getpid());
        if (rewrite(j->fd, j->text.data, j->text.len) != 0) {
            why = llmb_xasprintf("cannot write %s: %s", j->path,
                                 strerror(errno));
            goto off;
        }
    }
    goto done;

off:
    fprintf(stderr, "llmb-push: no journal for this run (%s): if it stops "
                    "before every job is confirmed, a re-run pushes them "
                    "again; --state-dir DIR names another directory\n",
            why != NULL ? why : "?");
    if (j->fd >= 0) {
        unlink(j->path);
        close(j->fd);
    }
    j->fd = -1;
done:
    free(why);
    free(dir);
    free(server);
    free(input_line);
}

void push_journal_close(struct push_journal *j, const struct push_tally *t)
{
    if (j->fd >= 0) {
        if (t->unknown == 0) {
            /* every job is stored or refused: the next run is a new one */
            if (unlink(j->path) != 0 && errno != ENOENT)
                fprintf(stderr, "llmb-push: cannot delete %s: %s; delete it, "
                                "or the next run of this input will reuse "
                                "its ids\n", j->path, strerror(errno));
        } else {
            llmb_buf_appendf(&j->text, "ended %lld %ld jobs confirmed, %ld "
                             "not confirmed, %ld rejected; first not "
                             "confirmed: %s in queue %s\n",
                             (long long)llmb_now_ms(), t->confirmed,
                             t->unknown, t->rejected,
                             t->first_unknown_id != NULL ? t->first_unknown_id
                                                         : "?",
                             t->first_unknown_queue != NULL
                                 ? t->first_unknown_queue : "?");
            if (rewrite(j->fd, j->text.data, j->text.len) != 0)
                fprintf(stderr, "llmb-push: cannot write %s: %s\n", j->path,
                        strerror(errno));
        }
        close(j->fd); /* and with it the lock */
    }
    j->fd = -1;
    free(j->path);
    j->path = NULL;
    llmb_buf_fini(&j->text);
}
