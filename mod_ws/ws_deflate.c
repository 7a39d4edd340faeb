/* permessage-deflate (RFC 7692): negotiation and the zlib streams.
 *
 * Negotiation follows §7.1: an offer with an unknown, repeated or invalid
 * parameter is declined, never the handshake; the answer names exactly the
 * parameters that will be used.  The streams are raw DEFLATE (no zlib
 * header, negative windowBits), flushed with Z_SYNC_FLUSH at the end of
 * every message we send (whose 00 00 ff ff tail the caller drops, §7.2.1),
 * and fed an 00 00 ff ff tail at the end of every message we receive
 * (§7.2.2).
 *
 * Memory: zlib's default compressor takes ~256 KiB (windowBits 15,
 * memLevel 8); a decompressor 1 << windowBits plus ~7 KiB.  Both are made
 * on first use, through a counting allocator, and without context takeover
 * freed after each message.  Must not: include an httpd header, do I/O,
 * log, or keep zlib memory for an idle connection without context
 * takeover.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <zlib.h>

#include "ws_deflate.h"
#include "ws_handshake.h"

/* ---- negotiation ------------------------------------------------------ */

/* An offer's or answer's parameters, each seen at most once. */
typedef struct {
    int snct, cnct;              /* *_no_context_takeover present */
    int sbits_set, cbits_set;    /* *_max_window_bits present */
    unsigned sbits, cbits;       /* their values; 0: present, no value */
} ws_pmd_t;

/* §7.1.2: 1*DIGIT, 8..15, no leading zero. */
static unsigned ws_deflate_bits(const char *v)
{
    if (v == NULL) {
        return 0;
    }
    if (v[0] >= '8' && v[0] <= '9' && v[1] == '\0') {
        return (unsigned)(v[0] - '0');
    }
    if (v[0] == '1' && v[1] >= '0' && v[1] <= '5' && v[2] == '\0') {
        return 10 + (unsigned)(v[1] - '0');
    }
    return 0;
}

/* Read permessage-deflate's parameters; -1 when one is unknown, repeated
 * or has a value it may not have.  in_offer: client_max_window_bits may
 * then come without a value (§7.1.2.2). */
static int ws_deflate_read_params(const ws_ext_offer_t *o, int in_offer,
                                  ws_pmd_t *pm)
{
    int i;

    memset(pm, 0, sizeof(*pm));
    if (o->bad || strcasecmp(o->name, "permessage-deflate") != 0) {
        return -1;
    }
    for (i = 0; i < o->params->nelts; i++) {
        const ws_ext_param_t *prm = &APR_ARRAY_IDX(o->params, i,
                                                   ws_ext_param_t);
        const char *n = prm->name;

        if (!strcasecmp(n, "server_no_context_takeover")) {
            if (pm->snct || prm->value) {
                return -1;
            }
            pm->snct = 1;
        }
        else if (!strcasecmp(n, "client_no_context_takeover")) {
            if (pm->cnct || prm->value) {
                return -1;
            }
            pm->cnct = 1;
        }
        else if (!strcasecmp(n, "server_max_window_bits")) {
            if (pm->sbits_set || (pm->sbits = ws_deflate_bits(prm->value)) == 0) {
                return -1;
            }
            pm->sbits_set = 1;
        }
        else if (!strcasecmp(n, "client_max_window_bits")) {
            if (pm->cbits_set) {
                return -1;
            }
            pm->cbits = ws_deflate_bits(prm->value);
            if (pm->cbits == 0 && (prm->value || !in_offer)) {
                return -1;
            }
            pm->cbits_set = 1;
        }
        else {
            return -1;
        }
    }
    return 0;
}

static unsigned ws_deflate_cap(unsigned bits)
{
    if (bits < WS_DEFLATE_WINDOW_BITS_MIN) {
        return WS_DEFLATE_WINDOW_BITS_MIN;
    }
    return bits > WS_DEFLATE_WINDOW_BITS_MAX ? WS_DEFLATE_WINDOW_BITS_MAX
                                             : bits;
}

const char *ws_deflate_accept(apr_pool_t *p, const apr_array_header_t *offers,
                              const ws_deflate_prefs_t *prefs,
                              ws_deflate_params_t *out)
{
    unsigned cap = ws_deflate_cap(prefs->max_window_bits);
    int i;

    for (i = 0; offers && i < offers->nelts; i++) {
        const ws_ext_offer_t *o = &APR_ARRAY_IDX(offers, i, ws_ext_offer_t);
        ws_pmd_t pm;
        const char *resp;

        if (ws_deflate_read_params(o, 1, &pm) != 0) {
            continue;
        }
        /* §7.1.2.1: we must not compress with a larger window than the
         * client asked for, and zlib's raw deflate has no 256-byte one. */
        if (pm.sbits_set && pm.sbits < WS_DEFLATE_WINDOW_BITS_MIN) {
            continue;
        }
        memset(out, 0, sizeof(*out));
        /* §7.1.1: either side may be told not to keep its context; we
         * always may say so, and must when the client asked. */
        out->server_no_context_takeover = pm.snct || prefs->no_context_takeover;
        out->client_no_context_takeover = pm.cnct || prefs->no_context_takeover;
        out->server_max_window_bits = pm.sbits_set && pm.sbits < cap
                                      ? pm.sbits : cap;
        /* §7.1.2.2: the client's window can only be limited when it said
         * it supports the parameter; else it may use 15. */
        if (pm.cbits_set) {
            unsigned want = pm.cbits ? pm.cbits : WS_DEFLATE_WINDOW_BITS_MAX;
            out->client_max_window_bits = want < cap ? want : cap;
        }
        else {
            out->client_max_window_bits = WS_DEFLATE_WINDOW_BITS_MAX;
        }
        resp = "permessage-deflate";
        if (out->server_no_context_takeover) {
            resp = apr_pstrcat(p, resp, "; server_no_context_takeover", NULL);
        }
        if (out->client_no_context_takeover) {
            resp = apr_pstrcat(p, resp, "; client_no_context_takeover", NULL);
        }
        if (pm.sbits_set) {
            resp = apr_psprintf(p, "%s; server_max_window_bits=%u", resp,
                                out->server_max_window_bits);
        }
        if (pm.cbits_set) {
            resp = apr_psprintf(p, "%s; client_max_window_bits=%u", resp,
                                out->client_max_window_bits);
        }
        return resp;
    }
    return NULL;
}

const char *ws_deflate_client_offer(apr_pool_t *p,
                                    const ws_deflate_prefs_t *prefs)
{
    const char *o = "permessage-deflate; client_max_window_bits";

    if (prefs->no_context_takeover) {
        o = apr_pstrcat(p, o, "; server_no_context_takeover"
                        "; client_no_context_takeover", NULL);
    }
    if (prefs->max_window_bits
        && prefs->max_window_bits < WS_DEFLATE_WINDOW_BITS_MAX) {
        o = apr_psprintf(p, "%s; server_max_window_bits=%u", o,
                         ws_deflate_cap(prefs->max_window_bits));
    }
    return o;
}

int ws_deflate_client_check(const apr_array_header_t *answer,
                            const ws_deflate_prefs_t *prefs,
                            ws_deflate_params_t *out)
{
    unsigned asked = prefs->max_window_bits
                     && prefs->max_window_bits < WS_DEFLATE_WINDOW_BITS_MAX
                     ? ws_deflate_cap(prefs->max_window_bits) : 0;
    ws_pmd_t pm;

    if (answer == NULL || answer->nelts != 1
        || ws_deflate_read_params(&APR_ARRAY_IDX(answer, 0, ws_ext_offer_t),
                                  0, &pm) != 0) {
        return -1;
    }
    /* §7.1.1.1 and §7.1.2.1: what we asked of the server must be in the
     * answer, and the server's window no larger than we allowed. */
    if ((prefs->no_context_takeover && !pm.snct)
        || (asked && (!pm.sbits_set || pm.sbits > asked))) {
        return -1;
    }
    /* We compress, and zlib cannot with a 256-byte window. */
    if (pm.cbits_set && pm.cbits < WS_DEFLATE_WINDOW_BITS_MIN) {
        return -1;
    }
    out->server_no_context_takeover = pm.snct;
    out->client_no_context_takeover = pm.cnct || prefs->no_context_takeover;
    out->server_max_window_bits = pm.sbits_set ? pm.sbits
                                               : WS_DEFLATE_WINDOW_BITS_MAX;
    out->client_max_window_bits = pm.cbits_set ? pm.cbits
                                               : WS_DEFLATE_WINDOW_BITS_MAX;
    return 0;
}

void ws_deflate_config_for(ws_deflate_config_t *cfg,
                           const ws_deflate_params_t *params, int is_client)
{
    memset(cfg, 0, sizeof(*cfg));
    if (is_client) {
        cfg->tx_window_bits = params->client_max_window_bits;
        cfg->tx_no_context_takeover = params->client_no_context_takeover;
        cfg->rx_window_bits = params->server_max_window_bits;
        cfg->rx_no_context_takeover = params->server_no_context_takeover;
    }
    else {
        cfg->tx_window_bits = params->server_max_window_bits;
        cfg->tx_no_context_takeover = params->server_no_context_takeover;
        cfg->rx_window_bits = params->client_max_window_bits;
        cfg->rx_no_context_takeover = params->client_no_context_takeover;
    }
}

/* ---- streams ---------------------------------------------------------- */

struct ws_deflate_t {
    ws_deflate_config_t cfg;
    z_stream tx, rx;
    int tx_live, rx_live;     /* deflateInit2 / inflateInit2 done */
    int rx_ended;             /* the message had a final block (BFINAL) */
    int rx_restart;           /* start anew, window kept, before more */
    apr_size_t tx_left;       /* message bytes not yet given to zlib */
    apr_size_t rx_tail_used;  /* bytes of the 00 00 ff ff tail inflated */
    apr_size_t bytes;         /* what zlib holds now */
};

/* zlib's allocations, with their size in front so zfree can count.  The
 * header keeps the block aligned for any type. */
typedef union {
    apr_size_t size;
    double d;
    void *p;
} ws_zhdr_t;

static voidpf ws_deflate_zalloc(voidpf opaque, uInt items, uInt size)
{
    ws_deflate_t *d = opaque;
    apr_size_t n;
    ws_zhdr_t *h;

    if (size != 0 && items > (APR_SIZE_MAX - sizeof(*h)) / size) {
        return Z_NULL;
    }
    n = (apr_size_t)items * size;
    h = malloc(sizeof(*h) + n);
    if (h == NULL) {
        return Z_NULL;
    }
    h->size = n;
    d->bytes += n + sizeof(*h);
    return h + 1;
}

static void ws_deflate_zfree(voidpf opaque, voidpf ptr)
{
    ws_deflate_t *d = opaque;
    ws_zhdr_t *h;

    if (ptr == Z_NULL) {
        return;
    }
    h = (ws_zhdr_t *)ptr - 1;
    d->bytes -= h->size + sizeof(*h);
    free(h);
}

static void ws_deflate_tx_free(ws_deflate_t *d)
{
    if (d->tx_live) {
        deflateEnd(&d->tx);
        d->tx_live = 0;
    }
}

static void ws_deflate_rx_free(ws_deflate_t *d)
{
    if (d->rx_live) {
        inflateEnd(&d->rx);
        d->rx_live = 0;
    }
    d->rx_ended = d->rx_restart = 0;
    d->rx_tail_used = 0;
}

void ws_deflate_release(ws_deflate_t *d)
{
    ws_deflate_tx_free(d);
    ws_deflate_rx_free(d);
}

static apr_status_t ws_deflate_cleanup(void *data)
{
    ws_deflate_release(data);
    return APR_SUCCESS;
}

apr_status_t ws_deflate_create(ws_deflate_t **pd, apr_pool_t *p,
                               const ws_deflate_config_t *cfg)
{
    ws_deflate_t *d = apr_pcalloc(p, sizeof(*d));

    d->cfg = *cfg;
    d->cfg.tx_window_bits = ws_deflate_cap(cfg->tx_window_bits);
    /* A larger window decodes anything a smaller one made; 8 is widened
     * to 9 for zlib's sake. */
    d->cfg.rx_window_bits = ws_deflate_cap(cfg->rx_window_bits);
    if (d->cfg.level < 1 || d->cfg.level > 9) {
        d->cfg.level = Z_DEFAULT_COMPRESSION;
    }
    if (d->cfg.mem_level < 1 || d->cfg.mem_level > 9) {
        d->cfg.mem_level = 8;
    }
    apr_pool_cleanup_register(p, d, ws_deflate_cleanup,
                              apr_pool_cleanup_null);
    *pd = d;
    return APR_SUCCESS;
}

apr_size_t ws_deflate_memory(const ws_deflate_t *d)
{
    return d->bytes;
}

static void ws_deflate_zinit(ws_deflate_t *d, z_stream *z)
{
    memset(z, 0, sizeof(*z));
    z->zalloc = ws_deflate_zalloc;
    z->zfree = ws_deflate_zfree;
    z->opaque = d;
}

int ws_deflate_tx_begin(ws_deflate_t *d, const unsigned char *in,
                        apr_size_t inlen)
{
    if (!d->tx_live) {
        unsigned bits = d->cfg.tx_window_bits;
        int mem = d->cfg.mem_level;

        /* Without context takeover nothing outlives the message, so a
         * window larger than the message buys nothing: size window and
         * hash to it, which makes zlib's set-up (and the memory while the
         * message is compressed) small for small messages. */
        if (d->cfg.tx_no_context_takeover) {
            bits = WS_DEFLATE_WINDOW_BITS_MIN;
            while (bits < d->cfg.tx_window_bits
                   && ((apr_size_t)1 << bits) < inlen) {
                bits++;
            }
            if (mem > (int)bits - 7) {
                mem = (int)bits - 7;
            }
        }
        ws_deflate_zinit(d, &d->tx);
        if (deflateInit2(&d->tx, d->cfg.level, Z_DEFLATED, -(int)bits, mem,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            ws_deflate_tx_free(d);
            return WS_DEFLATE_NOMEM;
        }
        d->tx_live = 1;
    }
    d->tx.next_in = (Bytef *)(apr_uintptr_t)in;
    d->tx.avail_in = 0;
    d->tx_left = inlen;
    return WS_DEFLATE_OK;
}

/* zlib counts in uInt: larger amounts go in pieces. */
#define WS_ZMAX ((apr_size_t)1 << 30)

int ws_deflate_tx(ws_deflate_t *d, unsigned char *out, apr_size_t outcap,
                  apr_size_t *produced)
{
    z_stream *z = &d->tx;
    int rc;

    *produced = 0;
    for (;;) {
        apr_size_t room = outcap - *produced;
        int flush;

        if (z->avail_in == 0 && d->tx_left > 0) {
            z->avail_in = (uInt)(d->tx_left < WS_ZMAX ? d->tx_left : WS_ZMAX);
            d->tx_left -= z->avail_in;
        }
        if (room == 0) {
            return WS_DEFLATE_OK;
        }
        z->next_out = out + *produced;
        z->avail_out = (uInt)(room < WS_ZMAX ? room : WS_ZMAX);
        /* Z_SYNC_FLUSH once the whole message is in: it ends the data on
         * a byte boundary with an empty stored block, 00 00 ff ff. */
        flush = d->tx_left == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        rc = deflate(z, flush);
        *produced = (apr_size_t)(z->next_out - out);
        if (rc == Z_STREAM_ERROR) {
            return WS_DEFLATE_NOMEM;
        }
        /* §7.2.1: done when everything went in and zlib had room left
         * after its flush (with none left it may have more to say). */
        if (flush == Z_SYNC_FLUSH && z->avail_in == 0 && z->avail_out > 0) {
            return WS_DEFLATE_DONE;
        }
    }
}

void ws_deflate_tx_end(ws_deflate_t *d)
{
    d->tx.next_in = Z_NULL;
    d->tx.avail_in = 0;
    d->tx_left = 0;
    if (d->cfg.tx_no_context_takeover) {
        ws_deflate_tx_free(d);
    }
}

void ws_deflate_tx_drop(ws_deflate_t *d)
{
    d->tx_left = 0;
    ws_deflate_tx_free(d);
}

static int ws_deflate_rx_init(ws_deflate_t *d)
{
    if (d->rx_live) {
        return WS_DEFLATE_OK;
    }
    ws_deflate_zinit(d, &d->rx);
    if (inflateInit2(&d->rx, -(int)d->cfg.rx_window_bits) != Z_OK) {
        ws_deflate_rx_free(d);
        return WS_DEFLATE_NOMEM;
    }
    d->rx_live = 1;
    return WS_DEFLATE_OK;
}

/* After a final block, with context takeover: a new stream that still
 * knows the last window, so back-references into earlier messages work
 * (§7.2.3.4). */
static int ws_deflate_rx_restart(ws_deflate_t *d)
{
    unsigned char *win;
    uInt n = 0;
    int rc = WS_DEFLATE_OK;

    d->rx_restart = d->rx_ended = 0;
    win = malloc((apr_size_t)1 << d->cfg.rx_window_bits);
    if (win == NULL) {
        return WS_DEFLATE_NOMEM;
    }
    if (inflateGetDictionary(&d->rx, win, &n) != Z_OK
        || inflateReset(&d->rx) != Z_OK
        || (n > 0 && inflateSetDictionary(&d->rx, win, n) != Z_OK)) {
        rc = WS_DEFLATE_NOMEM;
    }
    free(win);
    return rc;
}

/* One inflate call over in[0..inlen) into out[0..outcap). */
static int ws_deflate_inflate(ws_deflate_t *d, const unsigned char *in,
                              apr_size_t inlen, apr_size_t *consumed,
                              unsigned char *out, apr_size_t outcap,
                              apr_size_t *produced, int flush)
{
    z_stream *z = &d->rx;
    int rc;

    z->next_in = (Bytef *)(apr_uintptr_t)in;
    z->avail_in = (uInt)(inlen < WS_ZMAX ? inlen : WS_ZMAX);
    z->next_out = out;
    z->avail_out = (uInt)(outcap < WS_ZMAX ? outcap : WS_ZMAX);
    rc = inflate(z, flush);
    *consumed = (apr_size_t)(z->next_in - in);
    *produced = (apr_size_t)(z->next_out - out);
    z->next_in = Z_NULL;
    z->avail_in = 0;
    switch (rc) {
    case Z_OK:
    case Z_BUF_ERROR:        /* no progress possible: not an error here */
        return WS_DEFLATE_OK;
    case Z_STREAM_END:
        d->rx_ended = 1;
        return WS_DEFLATE_OK;
    case Z_MEM_ERROR:
        return WS_DEFLATE_NOMEM;
    default:                 /* Z_DATA_ERROR, Z_NEED_DICT */
        return WS_DEFLATE_BAD;
    }
}

int ws_deflate_rx(ws_deflate_t *d, const unsigned char *in, apr_size_t inlen,
                  apr_size_t *consumed, unsigned char *out,
                  apr_size_t outcap, apr_size_t *produced)
{
    apr_size_t used, got;
    int rc;

    *consumed = *produced = 0;
    /* With no input, inflate is asked only for output it held back. */
    if (inlen == 0 && (!d->rx_live || d->rx_restart || d->rx_ended)) {
        return WS_DEFLATE_OK;
    }
    if ((rc = ws_deflate_rx_init(d)) != WS_DEFLATE_OK) {
        return rc;
    }
    for (;;) {
        /* §7.2.1: blocks may follow a final block, even in the same
         * message; they go on from the same window. */
        if (d->rx_ended && *consumed < inlen) {
            d->rx_restart = 1;
        }
        if (d->rx_restart && (rc = ws_deflate_rx_restart(d)) != WS_DEFLATE_OK) {
            return rc;
        }
        rc = ws_deflate_inflate(d, in + *consumed, inlen - *consumed, &used,
                                out + *produced, outcap - *produced, &got,
                                Z_SYNC_FLUSH);
        *consumed += used;
        *produced += got;
        if (rc != WS_DEFLATE_OK || !d->rx_ended || *consumed == inlen
            || *produced == outcap) {
            return rc;
        }
    }
}

int ws_deflate_rx_finish(ws_deflate_t *d, unsigned char *out,
                         apr_size_t outcap, apr_size_t *produced)
{
    static const unsigned char tail[4] = { 0x00, 0x00, 0xff, 0xff };
    apr_size_t used, got;
    int rc;

    *produced = 0;
    /* No payload at all, or a final block ended the data: inflate gives
     * Z_STREAM_END only once all of its output is out, and no tail
     * follows a final block. */
    if (!d->rx_live || d->rx_restart || d->rx_ended) {
        return WS_DEFLATE_DONE;
    }
    for (;;) {
        /* Z_BLOCK stops right after the tail's empty stored block, where
         * zlib reports (data_type bit 7) that it is between blocks: data
         * cut inside a block never gets there. */
        rc = ws_deflate_inflate(d, tail + d->rx_tail_used,
                                sizeof(tail) - d->rx_tail_used, &used,
                                out + *produced, outcap - *produced, &got,
                                Z_BLOCK);
        d->rx_tail_used += used;
        *produced += got;
        if (rc != WS_DEFLATE_OK) {
            return rc;
        }
        if (d->rx_ended) {
            /* The tail completed a final block: not what a sender makes. */
            return WS_DEFLATE_BAD;
        }
        if (*produced == outcap) {
            return WS_DEFLATE_OK;      /* output first, then more tail */
        }
        if (d->rx_tail_used == sizeof(tail)) {
            return (d->rx.data_type & 128) ? WS_DEFLATE_DONE : WS_DEFLATE_BAD;
        }
        if (used == 0 && got == 0) {
            return WS_DEFLATE_BAD;     /* stuck: the data was cut short */
        }
    }
}

int ws_deflate_rx_end(ws_deflate_t *d)
{
    d->rx_tail_used = 0;
    if (d->cfg.rx_no_context_takeover) {
        ws_deflate_rx_free(d);
    }
    else if (d->rx_ended) {
        d->rx_ended = 0;
        d->rx_restart = 1;
    }
    return WS_DEFLATE_OK;
}
