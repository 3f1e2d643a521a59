/*
 * Error codes of libllmb. Functions return 0 (LLMB_OK) or one of these
 * negative values; the human message, when there is one, comes back through
 * an errstr out-parameter. llmb_strerror() names a code for logs.
 */
#ifndef LLMB_ERR_H
#define LLMB_ERR_H

enum llmb_err {
    LLMB_OK = 0,
    LLMB_EINVAL = -1,    /* bad argument or malformed input */
    LLMB_EIO = -2,       /* network or file I/O failed */
    LLMB_EREDIS = -3,    /* Redis answered with an error */
    LLMB_ENOTFOUND = -4, /* the thing asked for does not exist */
    LLMB_ETIMEOUT = -5,  /* gave up waiting */
    LLMB_EPROTO = -6,    /* Redis or a peer answered something unexpected */
    LLMB_ECONFIG = -7,   /* bad configuration (flags, env, config file) */
    LLMB_EVERSION = -8,  /* Redis or the Lua library is too old */
    LLMB_EAUTH = -9      /* Redis refused the credentials (WRONGPASS,
                            NOAUTH, NOPERM while connecting) */
};

/* Short static description of err ("invalid argument", ...); never NULL,
 * also for unknown codes. */
const char *llmb_strerror(int err);

#endif
