/* tcpshut.c: the native (C) Wireshark plugin of tcpshut (issue #13).
 *
 * A post-dissector that shows the CSV sidecar written by `tcpshut annotate`
 * (CAPTURE.tcpshut.csv, one row per TCP segment) as the protocol `tcpshut`:
 * the same fields, expert items and Info-column tag as lua/tcpshut.lua,
 * found by the same rules and checked by the same safety rules. Why C:
 * Wireshark calls a post-dissector on every frame, and for a Lua one that
 * call alone costs more than the whole budget (docs/performance.md,
 * "The Wireshark plugin's floor"). Here a frame whose row adds nothing costs
 * one array lookup.
 *
 * The sidecar is data, never code: every field is parsed with bounds checks
 * and is never used as a format string. See docs/wireshark.md ("The native
 * plugin") for what it leaves to the Lua script (the connections table).
 *
 * Built against one Wireshark release's headers (the plugin ABI changes
 * with every minor version): wireshark/native/Makefile.
 */

#define WS_BUILD_DLL
#include <wireshark.h>
#include <epan/packet.h>
#include <epan/proto.h>
#include <epan/expert.h>
#include <epan/prefs.h>
#include <epan/to_str.h>
#include <epan/address.h>
#include <epan/ex-opt.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "0.1.0"
#endif

WS_DLL_PUBLIC_DEF const gchar plugin_version[] = PLUGIN_VERSION;
WS_DLL_PUBLIC_DEF const int plugin_want_major = WIRESHARK_VERSION_MAJOR;
WS_DLL_PUBLIC_DEF const int plugin_want_minor = WIRESHARK_VERSION_MINOR;
WS_DLL_PUBLIC void plugin_register(void);
#if WIRESHARK_VERSION_MAJOR > 4 || (WIRESHARK_VERSION_MAJOR == 4 && WIRESHARK_VERSION_MINOR >= 2)
#include <wsutil/plugins.h>
/* 4.2 and later ask what a plugin is (tshark -G plugins shows it) */
WS_DLL_PUBLIC uint32_t plugin_describe(void);
uint32_t plugin_describe(void)
{
    return WS_PLUGIN_DESC_DISSECTOR;
}
#endif

/* ------------------------------------------------------------------------
 * Limits (the same as the Lua plugin's, plus the ones C needs)
 * ------------------------------------------------------------------------ */

static const char HEADER[] =
    "frame,ts,conn,src,dst,flags,seq,ack,len,sender_state,receiver_state,events,calls,summary,severity,related";
enum {
    F_FRAME, F_TS, F_CONN, F_SRC, F_DST, F_FLAGS, F_SEQ, F_ACK, F_LEN, F_SS, F_RS,
    F_EVENTS, F_CALLS, F_SUMMARY, F_SEVERITY, F_RELATED, NFIELDS
};
static const char *const COLUMNS[NFIELDS] = {
    "frame", "ts", "conn", "src", "dst", "flags", "seq", "ack", "len", "sender_state",
    "receiver_state", "events", "calls", "summary", "severity", "related",
};
#define MAX_COLUMNS 64
#define MAX_HEADER 4096
#define MAX_FIELD 4096
#define TS_TOLERANCE_NS 1000
#define CHUNK (1024 * 1024)
/* A row longer than this cannot be well formed (64 fields of at most 4096
 * bytes, each doubled by quoting): the index refuses it instead of holding
 * it in memory. */
#define MAX_ROW (2 * 1024 * 1024)
/* Frame numbers above this are refused: the index keeps a byte per frame. */
#define MAX_FRAME (1u << 28)
#define BLOCK 256
#define WINDOW (256 * 1024)
#define MAX_CONN_LINE 1024

static const char CONNS_HEADER[] =
    "conn,client,server,outcome,closer,client_calls,server_calls,first_frame,last_frame,notes,tunnel";
enum { K_CONN, K_CLIENT, K_SERVER, K_OUTCOME, K_CLOSER, K_CCALLS, K_SCALLS, K_FIRST, K_LAST, K_NOTES, K_TUNNEL, NCONN };
static const char *const CONN_COLUMNS[NCONN] = {
    "conn", "client", "server", "outcome", "closer", "client_calls", "server_calls",
    "first_frame", "last_frame", "notes", "tunnel",
};

static const char BESIDE[] = "beside the capture";

/* ------------------------------------------------------------------------
 * Protocol, fields, expert items
 * ------------------------------------------------------------------------ */

static int proto_tcpshut = -1;
static int hf_events = -1, hf_event = -1, hf_sender_state = -1, hf_receiver_state = -1;
static int hf_calls = -1, hf_call = -1, hf_summary = -1, hf_severity = -1, hf_conn = -1;
static int hf_related = -1, hf_relation = -1, hf_related_by = -1, hf_related_by_relation = -1;
static int hf_side = -1, hf_outcome = -1, hf_closer = -1, hf_client = -1, hf_server = -1;
static int hf_client_calls = -1, hf_server_calls = -1, hf_client_call = -1, hf_server_call = -1;
static int hf_conn_frames = -1, hf_connection = -1, hf_notes = -1, hf_tunnel = -1, hf_sidecar_file = -1;
static gint ett_tcpshut = -1, ett_connection = -1;

static expert_field ei_unknown_event = EI_INIT, ei_mismatch = EI_INIT, ei_malformed = EI_INIT;
static expert_field ei_unreadable = EI_INIT, ei_short = EI_INIT, ei_connections = EI_INIT;
static expert_field ei_no_sidecar = EI_INIT;

static dissector_handle_t tcpshut_handle;
static const char *pref_sidecar = "";

/* The event table, like lua/tcpshut.lua's EVENT_SPEC, and the codes that
 * make the Info tag's head (FIN and RST kinds) or a part of their own; the
 * quiet codes make neither (and have no expert item). Group 0: no item
 * (Wireshark's TCP analysis says it). The differential tests
 * (crates/core/tests/integration/wireshark/native.rs) fail when the two
 * plugins register or show them differently. */
typedef struct {
    const char *code;
    int group;
    int severity;
    const char *text;
} event_spec;
/* BEGIN EVENT TABLE: generated from Event::ALL (crates/engine/src/tracking/event.rs)
   by c_event_table() in crates/core/src/wireshark.rs; a test fails when they differ. */
static const event_spec EVENT_SPEC[] = {
    { "syn", 0, PI_CHAT, "connection opened (SYN)" },
    { "syn-ack", 0, PI_CHAT, "connection accepted (SYN-ACK)" },
    { "fin-active", 0, PI_NOTE, "active close (first FIN)" },
    { "fin-passive", 0, PI_NOTE, "passive close (FIN after the peer closed)" },
    { "fin-simultaneous", PI_SEQUENCE, PI_NOTE, "simultaneous close (FINs crossed)" },
    { "fin-order-unknown", 0, PI_NOTE, "FIN (who closed first cannot be told)" },
    { "fin-retransmit", PI_SEQUENCE, PI_NOTE, "FIN retransmitted" },
    { "fin-acked", 0, PI_CHAT, "FIN acknowledged" },
    { "time-wait", PI_SEQUENCE, PI_CHAT, "side enters TIME-WAIT" },
    { "data-after-fin", PI_PROTOCOL, PI_NOTE, "data sent after the peer's FIN (half-close in use)" },
    { "data-to-closed", PI_SEQUENCE, PI_WARN, "data sent to a side that has closed" },
    { "rst-abort", PI_SEQUENCE, PI_WARN, "connection aborted by RST" },
    { "rst-after-close", PI_SEQUENCE, PI_WARN, "RST after close (data to a closed socket)" },
    { "rst-refused", PI_SEQUENCE, PI_WARN, "connection refused (RST answering SYN)" },
    { "rst-forged", PI_SECURITY, PI_WARN, "RST forged on the path (not sent by the endpoint it names)" },
    { "rst-idle", PI_SEQUENCE, PI_WARN, "RST after an idle period: a middlebox dropped the connection's state" },
    { "rst-stray", PI_SEQUENCE, PI_NOTE, "RST for no known connection" },
    { "rst-ignored", PI_SECURITY, PI_ERROR, "RST ignored by the receiver (out of window or spoofed?)" },
    { "port-reuse", PI_SEQUENCE, PI_NOTE, "port reused by a new connection" },
    { "mid-stream", PI_SEQUENCE, PI_CHAT, "capture starts mid-connection" },
    { "options-cut", PI_UNDECODED, PI_CHAT, "TCP options cut by the snaplen" },
    { "end-unseen", PI_SEQUENCE, PI_CHAT, "capture ends before the connection does" },
};
static const char *const FIN_CODES[][2] = { { "fin-active", "FIN" }, { "fin-passive", "FIN" }, { "fin-simultaneous", "FIN (crossed)" }, { "fin-order-unknown", "FIN" }, { "fin-retransmit", "FIN again" } };
static const char *const RST_CODES[][2] = { { "rst-abort", "abort" }, { "rst-after-close", "after close" }, { "rst-refused", "refused" }, { "rst-forged", "forged" }, { "rst-stray", "stray" }, { "rst-ignored", "ignored" } };
static const char *const TAG_CODES[] = { "data-after-fin", "data-to-closed", "port-reuse" };
static const char *const QUIET_CODES[] = { "syn", "syn-ack", "fin-acked" };
/* END EVENT TABLE */
#define NEVENTS (sizeof EVENT_SPEC / sizeof EVENT_SPEC[0])
static expert_field ei_event[NEVENTS];

/* The link's kind, forward and backward, from the linking row's events. */
static const char *const RELATIONS[][3] = {
    { "rst-refused", "refuses this SYN", "refused by the RST" },
    { "rst-after-close", "RST answering this data", "answered by an RST" },
    { "rst-abort", "RST answering this segment", "answered by an RST" },
    { "rst-stray", "RST answering this segment", "answered by an RST" },
    { "rst-ignored", "RST answering this segment", "answered by an RST" },
    { "rst-forged", "RST answering this segment", "answered by an RST" },
    { "fin-retransmit", "retransmits this FIN", "FIN retransmitted" },
    { "data-to-closed", "data sent after this FIN", "FIN followed by data" },
    { "fin-acked", "acknowledges this FIN", "FIN acknowledged" },
    { "syn-ack", "accepts this SYN", "SYN accepted" },
};
#define NRELATIONS (sizeof RELATIONS / sizeof RELATIONS[0])

static const char *const STATES[] = {
    "UNKNOWN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2",
    "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT", "CLOSED",
};
static const char *const SEVERITIES[] = { "", "chat", "note", "warn", "error" };
static const char *const OUTCOMES[] = { "graceful", "reset", "refused", "half-closed", "open", "unknown" };
static const char *const CLOSERS[] = { "client", "server", "both", "none", "unknown" };

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static gboolean in_list(const char *s, size_t len, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && memcmp(list[i], s, len) == 0)
            return TRUE;
    return FALSE;
}

/* ------------------------------------------------------------------------
 * Per capture state, reset by init
 * ------------------------------------------------------------------------ */

typedef struct {
    guint32 target, from;
    guint8 relation; /* index into RELATIONS, NRELATIONS: "related" */
    guint32 order;
} back_link;

typedef struct {
    char *first_src, *other_src;
    guint32 first_base, other_base;
    gboolean first_known, other_known;
} seq_base;

typedef struct {
    char *path, *source;
    gboolean loaded, fell_back;
    int fd;
    guint64 size;
    /* the index: a flag per frame (0 no row, 1 plain, 2 other, 3 quoted, 4 quiet) */
    guint8 *flags;
    guint32 last, rows;
    guint64 *row_off;       /* rows + 1 offsets: each row's start, then the end of the last */
    guint32 *block_rank;    /* per BLOCK frames: the rank of its first row */
    guint32 nblocks;
    gboolean standard;      /* the header is HEADER */
    int ncols, at[NFIELDS]; /* the layout: each column's 0-based position, -1 absent */
    guint32 cur_frame, cur_rank;
    guint8 *wbuf;           /* the read window */
    guint64 wbase;
    size_t wlen, wcap;
    GHashTable *seq_bases;  /* conn -> seq_base */
    gboolean conns_loaded;
    GHashTable *conns;      /* conn -> checked line, in CONNS_HEADER's order */
    char *conns_err;
    gboolean conns_err_shown;
    gboolean back_built;
    back_link *back;
    guint32 nback;
    guint32 short_frame, note_frame, err_frame;
    char *err;
    expert_field *err_ei;
} sidecar_state;

static sidecar_state st;

static void seq_base_free(gpointer p)
{
    seq_base *b = (seq_base *)p;
    g_free(b->first_src);
    g_free(b->other_src);
    g_free(b);
}

static void state_clear(void)
{
    if (st.fd >= 0)
        close(st.fd);
    g_free(st.path);
    g_free(st.source);
    g_free(st.flags);
    g_free(st.row_off);
    g_free(st.block_rank);
    g_free(st.wbuf);
    if (st.seq_bases)
        g_hash_table_destroy(st.seq_bases);
    if (st.conns)
        g_hash_table_destroy(st.conns);
    g_free(st.conns_err);
    g_free(st.back);
    g_free(st.err);
    memset(&st, 0, sizeof st);
    st.fd = -1;
}

/* ------------------------------------------------------------------------
 * Small text helpers
 * ------------------------------------------------------------------------ */

static gboolean all_digits(const char *s, size_t len)
{
    if (len == 0)
        return FALSE;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return FALSE;
    return TRUE;
}

/* An unsigned number of at most 10 digits and at most max (check_uint). */
static gboolean check_uint(const char *s, guint64 max, guint64 *out)
{
    size_t len = strlen(s);
    if (!all_digits(s, len) || len > 10)
        return FALSE;
    guint64 v = 0;
    for (size_t i = 0; i < len; i++)
        v = v * 10 + (guint64)(s[i] - '0');
    if (out)
        *out = v;
    return v <= max;
}

static guint64 digits_value(const char *s, size_t len)
{
    guint64 v = 0;
    for (size_t i = 0; i < len; i++)
        v = v * 10 + (guint64)(s[i] - '0');
    return v;
}

static gboolean is_alnum(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Every byte of s is in the class: alnum (when with_alnum) or one of extra. */
static gboolean charset(const char *s, size_t len, gboolean with_alnum, const char *extra)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (with_alnum && is_alnum(c))
            continue;
        if (c != 0 && strchr(extra, c))
            continue;
        return FALSE;
    }
    return TRUE;
}

static gboolean lower_digit_dash(const char *s, size_t len, gboolean semicolon)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || (semicolon && c == ';'))
            continue;
        return FALSE;
    }
    return TRUE;
}

/* Removes, left to right, every sequence of n bytes whose first is in
 * [lo, hi] and the rest continuation bytes (string.gsub of one pattern). */
static size_t remove_sequences(guint8 *s, size_t len, int n, guint8 lo, guint8 hi)
{
    size_t out = 0, i = 0;
    while (i < len) {
        gboolean match = s[i] >= lo && s[i] <= hi && i + (size_t)n <= len;
        for (int k = 1; match && k < n; k++)
            match = s[i + (size_t)k] >= 0x80 && s[i + (size_t)k] <= 0xBF;
        if (match) {
            i += (size_t)n;
        } else {
            s[out++] = s[i++];
        }
    }
    return out;
}

/* The text check of every field: no control character, UTF-8 as the Lua
 * plugin checks it (its bytes above 127, taken together, made of 2-, 3- and
 * 4-byte sequences). Returns NULL or why. */
static const char *valid_text(const char *s)
{
    size_t len = strlen(s), high = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 32 || c == 127)
            return "control character";
        if (c >= 128)
            high++;
    }
    if (high == 0)
        return NULL;
    guint8 *rest = (guint8 *)g_malloc(high);
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 128)
            rest[n++] = (guint8)s[i];
    n = remove_sequences(rest, n, 2, 194, 223);
    n = remove_sequences(rest, n, 3, 224, 239);
    n = remove_sequences(rest, n, 4, 240, 244);
    g_free(rest);
    return n ? "invalid UTF-8" : NULL;
}

/* The next part of a text split at any of seps (empty parts skipped):
 * from *p, sets *len and returns its start, or NULL when none is left. */
static const char *next_part(const char **p, const char *seps, size_t *len)
{
    const char *s = *p + strspn(*p, seps);
    if (!*s)
        return NULL;
    *len = strcspn(s, seps);
    *p = s + *len;
    return s;
}

static int event_index(const char *code, size_t len)
{
    for (size_t i = 0; i < NEVENTS; i++)
        if (strlen(EVENT_SPEC[i].code) == len && memcmp(EVENT_SPEC[i].code, code, len) == 0)
            return (int)i;
    return -1;
}

static gboolean all_quiet(const char *events, size_t elen)
{
    size_t i = 0;
    while (i < elen) {
        while (i < elen && events[i] == ';')
            i++;
        size_t s = i;
        while (i < elen && events[i] != ';')
            i++;
        if (i > s && !in_list(events + s, i - s, QUIET_CODES, COUNT(QUIET_CODES)))
            return FALSE;
    }
    return TRUE;
}

/* ------------------------------------------------------------------------
 * Sidecar lookup
 * ------------------------------------------------------------------------ */

static gboolean regular_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static gboolean ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

static gboolean capture_extension(const char *path)
{
    static const char *const EXT[] = { "pcap", "pcapng", "cap", "ntar", "gz", "zst", "lz4" };
    const char *dot = strrchr(path, '.');
    if (!dot || !dot[1])
        return FALSE;
    for (const char *p = dot + 1; *p; p++)
        if (!is_alnum((unsigned char)*p))
            return FALSE;
    char lower[16];
    size_t n = strlen(dot + 1);
    if (n >= sizeof lower)
        return FALSE;
    for (size_t i = 0; i <= n; i++)
        lower[i] = g_ascii_tolower(dot[1 + i]);
    return in_list(lower, n, EXT, COUNT(EXT));
}

/* Linux: the files this process has open; the most recently opened one
 * (highest fd) with a CAPTURE.tcpshut.csv sibling that is a regular file,
 * capture-like names first. Returns that sidecar (newly allocated) or NULL. */
static char *find_beside_capture(void)
{
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return NULL;
    long best_fd = -1;
    gboolean best_is_cap = FALSE;
    char *best = NULL;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (!all_digits(de->d_name, strlen(de->d_name)) || strlen(de->d_name) > 9)
            continue;
        long fd = strtol(de->d_name, NULL, 10);
        char link[64], target[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%ld", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = 0;
        if (target[0] != '/' || g_str_has_prefix(target, "/proc/") || g_str_has_prefix(target, "/dev/") ||
            g_str_has_prefix(target, "/sys/") || ends_with(target, " (deleted)") ||
            ends_with(target, ".tcpshut.csv") || !regular_file(target))
            continue;
        gboolean is_cap = capture_extension(target);
        char *sidecar = g_strconcat(target, ".tcpshut.csv", NULL);
        if (regular_file(sidecar) && ((is_cap && !best_is_cap) || (is_cap == best_is_cap && fd > best_fd))) {
            g_free(best);
            best = sidecar;
            best_fd = fd;
            best_is_cap = is_cap;
        } else {
            g_free(sidecar);
        }
    }
    closedir(dir);
    return best;
}

/* The -X lua_script1: argument, as the Lua script would take it: not the
 * script's own name and not a .lua file. */
static const char *script_argument(void)
{
    const char *a = ex_opt_get_nth("lua_script1", 0);
    if (!a || !*a || strcmp(a, "tcpshut") == 0)
        return NULL;
    size_t n = strlen(a);
    if (n >= 4 && a[n - 4] == '.' && g_ascii_strcasecmp(a + n - 3, "lua") == 0)
        return NULL;
    return a;
}

static void resolve_sidecar(void)
{
    const char *arg, *env;
    if (pref_sidecar && *pref_sidecar) {
        st.path = g_strdup(pref_sidecar);
        st.source = g_strdup("preference");
    } else if ((arg = script_argument()) != NULL) {
        st.path = g_strdup(arg);
        st.source = g_strdup("argument lua_script1");
    } else if ((env = g_getenv("TCPSHUT_SIDECAR")) != NULL && *env) {
        st.path = g_strdup(env);
        st.source = g_strdup("TCPSHUT_SIDECAR");
    } else {
        st.path = find_beside_capture();
        if (st.path)
            st.source = g_strdup(BESIDE);
    }
}

/* ------------------------------------------------------------------------
 * Columns by name
 * ------------------------------------------------------------------------ */

/* The 0-based position of each of names in the header (-1: absent) and the
 * number of columns; or NULL-free error text in *why (newly allocated). */
static gboolean column_positions(const char *header, const char *const *names, int nnames, int optional,
                                 int *pos, int *ncols, char **why)
{
    size_t hlen = strlen(header);
    if (hlen > MAX_HEADER) {
        *why = g_strdup_printf("header line longer than %d bytes", MAX_HEADER);
        return FALSE;
    }
    if (strchr(header, '"')) {
        *why = g_strdup("quote in the header line");
        return FALSE;
    }
    for (int k = 0; k < nnames; k++)
        pos[k] = -1;
    int n = 0;
    const char *p = header;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        n++;
        if (n > MAX_COLUMNS) {
            *why = g_strdup_printf("more than %d columns", MAX_COLUMNS);
            return FALSE;
        }
        for (int k = 0; k < nnames; k++) {
            if (strlen(names[k]) == len && memcmp(names[k], p, len) == 0) {
                if (pos[k] >= 0) {
                    *why = g_strdup_printf("column %s appears twice", names[k]);
                    return FALSE;
                }
                pos[k] = n - 1;
            }
        }
        if (!c)
            break;
        p = c + 1;
    }
    GString *missing = g_string_new(NULL);
    int nmissing = 0;
    for (int k = 0; k < nnames; k++) {
        if (pos[k] < 0 && k != optional) {
            if (nmissing++)
                g_string_append(missing, ", ");
            g_string_append(missing, names[k]);
        }
    }
    if (nmissing) {
        *why = g_strdup_printf("missing column%s %s in the header line", nmissing > 1 ? "s" : "", missing->str);
        g_string_free(missing, TRUE);
        return FALSE;
    }
    g_string_free(missing, TRUE);
    *ncols = n;
    return TRUE;
}

/* ------------------------------------------------------------------------
 * Row parsing: the Lua plugin's checked parser (parse_row, check_row)
 * ------------------------------------------------------------------------ */

typedef struct {
    char *val[MAX_COLUMNS];
    int n;
    char *scratch;
    size_t cap;
} parsed_row;

/* Parses the CSV row data[0..len) (up to its line end) into nfields
 * fields. Returns NULL, or why (newly allocated). */
static char *parse_row(const char *data, size_t len, int nfields, parsed_row *r)
{
    if (r->cap < len + (size_t)MAX_COLUMNS + 1) {
        r->cap = len + (size_t)MAX_COLUMNS + 1;
        r->scratch = (char *)g_realloc(r->scratch, r->cap);
    }
    char *out = r->scratch;
    size_t pos = 0;
    int n = 0;
    for (;;) {
        n++;
        if (n > nfields)
            return g_strdup_printf("more than %d fields", nfields);
        char *val = out;
        size_t vlen = 0;
        int c;
        if (pos < len && data[pos] == '"') {
            size_t p = pos + 1;
            for (;;) {
                const char *q = p < len ? (const char *)memchr(data + p, '"', len - p) : NULL;
                if (!q)
                    return g_strdup("unterminated quoted field");
                size_t qi = (size_t)(q - data);
                memcpy(out + vlen, data + p, qi - p);
                vlen += qi - p;
                if (qi + 1 < len && data[qi + 1] == '"') {
                    out[vlen++] = '"';
                    p = qi + 2;
                } else {
                    pos = qi + 1;
                    break;
                }
            }
            c = pos < len ? (unsigned char)data[pos] : -1;
            if (c == '\r' && pos + 1 < len && data[pos + 1] == '\n')
                c = '\n';
        } else {
            size_t s = pos;
            while (s < len && data[s] != ',' && data[s] != '\n')
                s++;
            vlen = s - pos;
            memcpy(out, data + pos, vlen);
            if (vlen > 0 && out[vlen - 1] == '\r')
                vlen--;
            if (memchr(out, '"', vlen))
                return g_strdup_printf("quote inside an unquoted field %d", n);
            pos = s;
            c = pos < len ? (unsigned char)data[pos] : -1;
        }
        if (vlen > MAX_FIELD)
            return g_strdup_printf("field %d is longer than %d bytes", n, MAX_FIELD);
        /* a NUL would end the C string early: make it the control character
         * it is, which check_row refuses as the Lua plugin does */
        for (char *z = (char *)memchr(out, 0, vlen); z; z = (char *)memchr(z, 0, vlen - (size_t)(z - out)))
            *z = 1;
        out[vlen] = 0;
        r->val[n - 1] = val;
        out += vlen + 1;
        if (c == ',') {
            pos++;
        } else if (c == '\n' || c == -1) {
            break;
        } else {
            return g_strdup_printf("text after the closing quote of field %d", n);
        }
    }
    if (n != nfields)
        return g_strdup_printf("%d fields instead of %d", n, nfields);
    r->n = n;
    return NULL;
}

typedef struct {
    const char *f[NFIELDS];
} row_t;

/* The row in HEADER's column order, whatever the sidecar's layout. */
static char *parse_row_as_header(const char *data, size_t len, parsed_row *pr, row_t *row)
{
    char *why = parse_row(data, len, st.ncols, pr);
    if (why)
        return why;
    for (int k = 0; k < NFIELDS; k++)
        row->f[k] = st.at[k] >= 0 ? pr->val[st.at[k]] : "0"; /* only ack may be absent */
    return NULL;
}

static char *check_row(const row_t *r)
{
    for (int i = 0; i < NFIELDS; i++) {
        const char *why = valid_text(r->f[i]);
        if (why)
            return g_strdup_printf("%s in field %s", why, COLUMNS[i]);
    }
    const char *ts = r->f[F_TS], *dot = strchr(ts, '.');
    if (!dot || !all_digits(ts, (size_t)(dot - ts)) || strlen(dot + 1) != 9 || !all_digits(dot + 1, 9) ||
        dot - ts > 12)
        return g_strdup_printf("bad ts \"%s\" (seconds with exactly 9 decimals)", ts);
    if (!check_uint(r->f[F_CONN], 4294967295u, NULL))
        return g_strdup_printf("bad conn \"%s\"", r->f[F_CONN]);
    if (!charset(r->f[F_FLAGS], strlen(r->f[F_FLAGS]), FALSE, "FSRPAUEC"))
        return g_strdup_printf("bad flags \"%s\"", r->f[F_FLAGS]);
    for (int i = F_SEQ; i <= F_LEN; i++)
        if (!check_uint(r->f[i], 4294967295u, NULL))
            return g_strdup_printf("bad %s \"%s\"", COLUMNS[i], r->f[i]);
    for (int i = F_SS; i <= F_RS; i++)
        if (!in_list(r->f[i], strlen(r->f[i]), STATES, COUNT(STATES)))
            return g_strdup_printf("bad %s \"%s\" (not an RFC 9293 state name)", COLUMNS[i], r->f[i]);
    const char *ev = r->f[F_EVENTS];
    size_t elen = strlen(ev);
    if (elen && (!lower_digit_dash(ev, elen, TRUE) || ev[0] == ';' || ev[elen - 1] == ';'))
        return g_strdup_printf("bad events \"%s\"", ev);
    if (strstr(ev, ";;"))
        return g_strdup_printf("bad events \"%s\"", ev);
    if (!charset(r->f[F_CALLS], strlen(r->f[F_CALLS]), TRUE, "_>|-"))
        return g_strdup_printf("bad calls \"%s\"", r->f[F_CALLS]);
    if (!in_list(r->f[F_SEVERITY], strlen(r->f[F_SEVERITY]), SEVERITIES, COUNT(SEVERITIES)))
        return g_strdup_printf("bad severity \"%s\" (chat, note, warn, error or empty)", r->f[F_SEVERITY]);
    if (r->f[F_RELATED][0] && !check_uint(r->f[F_RELATED], 4294967295u, NULL))
        return g_strdup_printf("bad related \"%s\"", r->f[F_RELATED]);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Loading: one pass over the file builds the index
 * ------------------------------------------------------------------------ */

typedef struct {
    int fd;
    guint64 size, read; /* bytes of the file read so far */
    char *buf;
    size_t len, pos;    /* buf[pos..len) not consumed yet */
    guint64 base;       /* file offset of buf[0] */
    gboolean eof;
} reader;

/* Keeps buf[pos..), appends the next chunk. FALSE on a read error. */
static gboolean refill(reader *rd)
{
    size_t keep = rd->len - rd->pos;
    memmove(rd->buf, rd->buf + rd->pos, keep);
    rd->base += rd->pos;
    rd->pos = 0;
    rd->len = keep;
    guint64 left = rd->size - rd->read;
    size_t want = left < CHUNK ? (size_t)left : CHUNK;
    if (want > 0) {
        ssize_t got = pread(rd->fd, rd->buf + keep, want, (off_t)rd->read);
        if (got < 0)
            return FALSE;
        rd->len += (size_t)got;
        rd->read += (guint64)got;
        if ((size_t)got < want)
            rd->size = rd->read; /* the file shrank: read what is there */
    }
    rd->eof = rd->read >= rd->size;
    return TRUE;
}

/* From buf[pos], the position of the row's line end outside quotes, or -1
 * (*in_quote: the data ran out inside a quoted field). */
static gssize row_end(const char *buf, size_t len, size_t pos, gboolean *in_quote)
{
    *in_quote = FALSE;
    while (pos < len) {
        char c = buf[pos];
        if (c == '\n')
            return (gssize)pos;
        if (c == '"') {
            size_t q = pos + 1;
            for (;;) {
                const char *e = q < len ? (const char *)memchr(buf + q, '"', len - q) : NULL;
                if (!e) {
                    *in_quote = TRUE;
                    return -1;
                }
                size_t ei = (size_t)(e - buf);
                if (ei + 1 < len && buf[ei + 1] == '"') {
                    q = ei + 2;
                } else if (ei + 1 == len) {
                    *in_quote = TRUE; /* "" or a closing quote: more text decides */
                    return -1;
                } else {
                    pos = ei + 1;
                    break;
                }
            }
            continue;
        }
        pos++;
    }
    return -1;
}

/* For a row of another layout, buf[pos..en): its frame number (or -1) and
 * its flag, walking its fields. */
static gint64 layout_row(const char *buf, size_t pos, size_t en, int *flag)
{
    int i = 0;
    size_t p = pos;
    gint64 frame = -1;
    const char *events = NULL;
    size_t elen = 0;
    gboolean quoted = FALSE, filled = FALSE;
    for (;;) {
        size_t s, e, after; /* the value is buf[s..e) */
        gboolean in_quotes = p < en && buf[p] == '"';
        if (in_quotes) {
            quoted = TRUE;
            size_t c = p;
            for (;;) {
                const char *q = c + 1 < en ? (const char *)memchr(buf + c + 1, '"', en - c - 1) : NULL;
                if (!q) {
                    *flag = 3;
                    return frame;
                }
                c = (size_t)(q - buf);
                if (c + 1 < en && buf[c + 1] == '"')
                    c++;
                else
                    break;
            }
            s = p + 1;
            e = c;
            after = c + 1;
        } else {
            after = p;
            while (after < en && buf[after] != ',' && buf[after] != '\n')
                after++;
            s = p;
            e = after;
            if (after == en && e > s && buf[e - 1] == '\r')
                e--;
        }
        i++;
        if (i - 1 == st.at[F_FRAME]) {
            if (in_quotes || !all_digits(buf + s, e - s) || e - s > 10)
                return -1;
            frame = (gint64)digits_value(buf + s, e - s);
        } else if (i - 1 == st.at[F_EVENTS]) {
            events = buf + s;
            elen = e - s;
        } else if (e > s && (i - 1 == st.at[F_CALLS] || i - 1 == st.at[F_SUMMARY] ||
                             i - 1 == st.at[F_SEVERITY] || i - 1 == st.at[F_RELATED])) {
            filled = TRUE;
        }
        if (after >= en || buf[after] != ',')
            break;
        p = after + 1;
    }
    if (quoted)
        *flag = 3;
    else if (!events || elen == 0)
        *flag = filled ? 2 : 1;
    else
        *flag = all_quiet(events, elen) ? 4 : 2;
    return frame;
}

/* The events field of a row of HEADER without quotes (between its 11th and
 * 12th commas), first: the row's first comma, nl: its line end. */
static gboolean events_field(const char *buf, size_t first, size_t nl, const char **ev, size_t *elen)
{
    size_t c = first;
    for (int k = 2; k <= 11; k++) {
        const char *n = (const char *)memchr(buf + c + 1, ',', nl - c - 1 + 1);
        if (!n || (size_t)(n - buf) > nl)
            return FALSE;
        c = (size_t)(n - buf);
    }
    const char *e = (const char *)memchr(buf + c + 1, ',', nl > c ? nl - c : 0);
    if (!e || (size_t)(e - buf) > nl || (size_t)(e - buf) == c + 1)
        return FALSE;
    *ev = buf + c + 1;
    *elen = (size_t)(e - buf) - c - 1;
    return TRUE;
}

static char *out_of_order(guint32 row, const char *frame_text, guint32 last)
{
    return g_strdup_printf("row %u: frame %s does not follow frame %u (rows must be in increasing frame order)",
                           row, frame_text, last);
}

/* Adds row (frame n, flag, file offset off) to the index. */
static gboolean index_add(guint32 n, int flag, guint64 off, guint32 *flags_cap, guint32 *off_cap)
{
    if (n + 1 > *flags_cap) {
        guint32 cap = *flags_cap ? *flags_cap : 4096;
        while (cap < n + 1)
            cap = cap > MAX_FRAME ? MAX_FRAME + 1 : cap * 2;
        st.flags = (guint8 *)g_realloc(st.flags, cap);
        memset(st.flags + *flags_cap, 0, cap - *flags_cap);
        *flags_cap = cap;
        guint32 nb = cap / BLOCK + 2;
        st.block_rank = (guint32 *)g_realloc(st.block_rank, nb * sizeof(guint32));
    }
    /* blocks from the last row's on up to n's start at this row */
    guint32 from = st.rows ? (st.last - 1) / BLOCK + 1 : 0, to = (n - 1) / BLOCK;
    for (guint32 b = from; b <= to; b++)
        st.block_rank[b] = st.rows;
    st.nblocks = to + 1;
    if (st.rows + 2 > *off_cap) {
        *off_cap = *off_cap ? *off_cap * 2 : 4096;
        st.row_off = (guint64 *)g_realloc(st.row_off, (size_t)*off_cap * sizeof(guint64));
    }
    st.flags[n] = (guint8)flag;
    st.row_off[st.rows] = off;
    st.rows++;
    st.last = n;
    return TRUE;
}

/* Reads the whole file once; NULL or why (newly allocated). */
static char *build_index(int fd, guint64 size)
{
    reader rd = { fd, size, 0, NULL, 0, 0, 0, FALSE };
    rd.buf = (char *)g_malloc(CHUNK + MAX_ROW + 16);
    char *why = NULL;
    guint32 flags_cap = 0, off_cap = 0;
    if (!refill(&rd)) {
        why = g_strdup("read error");
        goto out;
    }
    size_t pos = 0;
    if (rd.len >= 3 && memcmp(rd.buf, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    const char *nlp = (const char *)memchr(rd.buf + pos, '\n', rd.len - pos);
    if (!nlp) {
        if (rd.len == 0)
            why = g_strdup("the file is empty (no header line)");
        else if (!rd.eof)
            why = g_strdup_printf("header line longer than %d bytes", MAX_HEADER);
        else
            why = g_strdup("truncated: the header line has no line end");
        goto out;
    }
    size_t nl = (size_t)(nlp - rd.buf);
    size_t hlen = nl - pos;
    if (hlen > 0 && rd.buf[nl - 1] == '\r')
        hlen--;
    char *header = g_strndup(rd.buf + pos, hlen);
    st.standard = strcmp(header, HEADER) == 0;
    if (!st.standard) {
        if (!column_positions(header, COLUMNS, NFIELDS, F_ACK, st.at, &st.ncols, &why)) {
            g_free(header);
            goto out;
        }
    } else {
        st.ncols = NFIELDS;
        for (int i = 0; i < NFIELDS; i++)
            st.at[i] = i;
    }
    g_free(header);
    rd.pos = nl + 1;
    gboolean blank = FALSE;
    for (;;) {
        char *buf = rd.buf;
        size_t p = rd.pos;
        const char *np = p < rd.len ? (const char *)memchr(buf + p, '\n', rd.len - p) : NULL;
        if (!np) {
            if (rd.eof) {
                if (p < rd.len && !(p + 1 == rd.len && buf[p] == '\r'))
                    why = g_strdup("truncated: the last row has no line end");
                break;
            }
            if (rd.len - rd.pos > MAX_ROW) {
                why = g_strdup_printf("row %u is longer than %d bytes", st.rows + 1, MAX_ROW);
                break;
            }
            if (!refill(&rd)) {
                why = g_strdup("read error");
                break;
            }
            continue;
        }
        nl = (size_t)(np - buf);
        if (nl == p || (nl == p + 1 && buf[p] == '\r')) {
            blank = TRUE; /* blank lines are allowed at the end only */
            rd.pos = nl + 1;
            continue;
        }
        if (blank) {
            why = g_strdup_printf("row %u: does not start with a frame number", st.rows + 1);
            break;
        }
        gboolean quote = memchr(buf + p, '"', nl - p) != NULL;
        gint64 n = -1;
        int flag = 0;
        size_t next = 0;
        gboolean need_more = FALSE;
        if (!st.standard) {
            size_t en = nl;
            gboolean in_quote = FALSE;
            gboolean have = TRUE;
            if (quote) {
                gssize e = row_end(buf, rd.len, p, &in_quote);
                have = e >= 0;
                en = have ? (size_t)e : 0;
            }
            if (have) {
                n = layout_row(buf, p, en, &flag);
                if (n < 0) {
                    why = g_strdup_printf("row %u: its frame field is not a frame number", st.rows + 1);
                    break;
                }
                if ((guint64)n <= st.last) {
                    char t[24];
                    snprintf(t, sizeof t, "%" G_GINT64_FORMAT, n);
                    why = out_of_order(st.rows + 1, t, st.last);
                    break;
                }
                next = en + 1;
                if (quote)
                    flag = 3;
            } else if (rd.eof) {
                why = in_quote ? g_strdup_printf("truncated: row %u has an unterminated quoted field", st.rows + 1)
                               : g_strdup_printf("truncated: row %u has no line end", st.rows + 1);
                break;
            } else {
                need_more = TRUE;
            }
        } else {
            size_t e = p;
            while (e < nl && buf[e] >= '0' && buf[e] <= '9')
                e++;
            if (e == p || e >= nl || buf[e] != ',') {
                why = g_strdup_printf("row %u: does not start with a frame number", st.rows + 1);
                break;
            }
            if (e - p > 10 || digits_value(buf + p, e - p) <= st.last) {
                char *t = g_strndup(buf + p, e - p);
                why = out_of_order(st.rows + 1, t, st.last);
                g_free(t);
                break;
            }
            n = (gint64)digits_value(buf + p, e - p);
            if (!quote) {
                next = nl + 1;
                flag = 2;
                if (nl >= 5 && memcmp(buf + nl - 5, ",,,,,", 5) == 0)
                    flag = 1;
                if (flag == 2) {
                    const char *ev;
                    size_t elen;
                    if (events_field(buf, e, nl, &ev, &elen) && all_quiet(ev, elen))
                        flag = 4;
                }
            } else {
                gboolean in_quote;
                gssize en = row_end(buf, rd.len, p, &in_quote);
                if (en >= 0) {
                    next = (size_t)en + 1;
                    flag = 3;
                } else if (rd.eof) {
                    why = in_quote ? g_strdup_printf("truncated: row %u (frame %" G_GINT64_FORMAT
                                                     ") has an unterminated quoted field",
                                                     st.rows + 1, n)
                                   : g_strdup_printf("truncated: row %u (frame %" G_GINT64_FORMAT
                                                     ") has no line end",
                                                     st.rows + 1, n);
                    break;
                } else {
                    need_more = TRUE;
                }
            }
        }
        if (need_more) {
            if (rd.len - rd.pos > MAX_ROW) {
                why = g_strdup_printf("row %u is longer than %d bytes", st.rows + 1, MAX_ROW);
                break;
            }
            if (!refill(&rd)) {
                why = g_strdup("read error");
                break;
            }
            continue;
        }
        if (n > (gint64)MAX_FRAME) {
            why = g_strdup_printf("row %u: frame %" G_GINT64_FORMAT " is above %u, the largest this plugin indexes",
                                  st.rows + 1, n, MAX_FRAME);
            break;
        }
        index_add((guint32)n, flag, rd.base + p, &flags_cap, &off_cap);
        rd.pos = next;
        if (st.row_off)
            st.row_off[st.rows] = rd.base + next; /* the end of the last row so far */
    }
out:
    g_free(rd.buf);
    return why;
}

static void set_error(expert_field *ei, char *text)
{
    g_free(st.err);
    st.err = text;
    st.err_ei = ei;
}

#define NOT_REGULAR "not a regular file (a FIFO, a device or a folder is never read)"

/* Opens a sidecar (either of them) for reading, only if it is a regular
 * file (a FIFO's open would block, a device never ends), and finds its
 * size: the readers read no more than that. Returns the fd, or -1 with
 * *why set (NULL when nothing is at path: stat fails), as the Lua
 * plugin's open_regular. */
static int open_regular(const char *path, guint64 *size, char **why)
{
    struct stat sb;
    *why = NULL;
    if (stat(path, &sb) != 0)
        return -1;
    if (!S_ISREG(sb.st_mode)) {
        *why = g_strdup(NOT_REGULAR);
        return -1;
    }
    /* O_NONBLOCK: a FIFO swapped in after the stat never blocks the open */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        *why = g_strdup_printf("%s: %s", path, g_strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        *why = g_strdup(NOT_REGULAR);
        return -1;
    }
    *size = (guint64)sb.st_size;
    return fd;
}

static void load_sidecar(void)
{
    st.loaded = TRUE;
    if (!st.path)
        return;
    char *why = NULL;
    int fd = open_regular(st.path, &st.size, &why);
    if (fd < 0) {
        set_error(&ei_unreadable, g_strdup_printf("tcpshut: cannot read sidecar: %s; no annotations shown "
                                                  "(sidecar %s, from %s)",
                                                  why ? why : NOT_REGULAR, st.path, st.source));
        g_free(why);
        return;
    }
    why = build_index(fd, st.size);
    if (why) {
        close(fd);
        g_free(st.flags);
        st.flags = NULL;
        set_error(&ei_malformed, g_strdup_printf("tcpshut: malformed sidecar: %s; no annotations shown "
                                                 "(sidecar %s, from %s)",
                                                 why, st.path, st.source));
        g_free(why);
        return;
    }
    st.fd = fd;
    if (!st.flags) {
        st.flags = (guint8 *)g_malloc0(1); /* no rows: every TCP frame is past the end */
        st.last = 0;
    }
    st.seq_bases = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, seq_base_free);
}

/* ------------------------------------------------------------------------
 * Reading a row back
 * ------------------------------------------------------------------------ */

/* The rank (0-based) of frame num's row (its flag is not 0). */
static guint32 row_rank(guint32 num)
{
    guint32 f, rank;
    if (st.cur_frame && st.cur_frame <= num && num - st.cur_frame <= BLOCK) {
        f = st.cur_frame;
        rank = st.cur_rank;
    } else {
        guint32 b = (num - 1) / BLOCK;
        rank = st.block_rank[b];
        f = b * BLOCK + 1;
        while (st.flags[f] == 0)
            f++; /* f <= num: num has a row */
    }
    while (f < num) {
        f++;
        if (st.flags[f])
            rank++;
    }
    st.cur_frame = num;
    st.cur_rank = rank;
    return rank;
}

/* The bytes of frame num's row (through its line end) or NULL. */
static const char *row_bytes(guint32 num, size_t *len)
{
    guint32 rank = row_rank(num);
    if (rank >= st.rows)
        return NULL;
    guint64 off = st.row_off[rank], end = st.row_off[rank + 1];
    if (end <= off || end - off > MAX_ROW + 2)
        return NULL;
    *len = (size_t)(end - off);
    if (st.wbuf && off >= st.wbase && end <= st.wbase + st.wlen)
        return (const char *)st.wbuf + (off - st.wbase);
    size_t want = *len > WINDOW ? *len : WINDOW;
    if (want > st.wcap) {
        st.wbuf = (guint8 *)g_realloc(st.wbuf, want);
        st.wcap = want;
    }
    ssize_t got = pread(st.fd, st.wbuf, want, (off_t)off);
    if (got < 0 || (size_t)got < *len) {
        st.wlen = 0;
        return NULL;
    }
    st.wbase = off;
    st.wlen = (size_t)got;
    return (const char *)st.wbuf;
}

/* ------------------------------------------------------------------------
 * The connections sidecar
 * ------------------------------------------------------------------------ */

static gboolean conn_line_ok(char *line, guint32 *id)
{
    const char *f[NCONN + 1];
    int n = 0;
    char *p = line;
    f[n++] = p;
    for (; *p; p++) {
        if (*p == ',') {
            if (n >= NCONN)
                return FALSE;
            f[n++] = p + 1;
        }
    }
    if (n != NCONN)
        return FALSE;
    size_t len[NCONN];
    for (int k = 0; k < NCONN; k++)
        len[k] = (size_t)((k + 1 < NCONN ? f[k + 1] - 1 : p) - f[k]);
    if (!all_digits(f[K_CONN], len[K_CONN]) || len[K_CONN] > 10)
        return FALSE;
    guint64 v = digits_value(f[K_CONN], len[K_CONN]);
    if (v > 4294967295u)
        return FALSE;
    for (int k = K_CLIENT; k <= K_SERVER; k++)
        if (len[k] == 0 || !charset(f[k], len[k], TRUE, ".:[]%_-"))
            return FALSE;
    if (len[K_OUTCOME] == 0 || !in_list(f[K_OUTCOME], len[K_OUTCOME], OUTCOMES, COUNT(OUTCOMES)))
        return FALSE;
    if (!in_list(f[K_CLOSER], len[K_CLOSER], CLOSERS, COUNT(CLOSERS)))
        return FALSE;
    for (int k = K_CCALLS; k <= K_SCALLS; k++)
        if (!charset(f[k], len[k], TRUE, "_>|-"))
            return FALSE;
    for (int k = K_FIRST; k <= K_LAST; k++)
        if (!all_digits(f[k], len[k]) || len[k] > 15)
            return FALSE;
    if (digits_value(f[K_FIRST], len[K_FIRST]) > digits_value(f[K_LAST], len[K_LAST]))
        return FALSE;
    if (!lower_digit_dash(f[K_NOTES], len[K_NOTES], TRUE))
        return FALSE;
    if (!charset(f[K_TUNNEL], len[K_TUNNEL], TRUE, ".:=<>/ %-"))
        return FALSE;
    *id = (guint32)v;
    return TRUE;
}

/* The connections sidecar's lines, checked, into st.conns. */
static void load_connections(void)
{
    st.conns_loaded = TRUE;
    if (!st.path || !ends_with(st.path, ".csv"))
        return;
    char *path = g_strconcat(st.path, NULL);
    path[strlen(path) - 4] = 0;
    char *cpath = g_strconcat(path, ".connections.csv", NULL);
    g_free(path);
    guint64 size = 0, done = 0;
    char *why = NULL;
    int fd = open_regular(cpath, &size, &why);
    if (fd < 0) {
        /* none: not an error (older sidecars have none); else said once */
        if (why)
            st.conns_err = strcmp(why, NOT_REGULAR) == 0 ? g_strdup_printf("%s: %s", cpath, why) : g_strdup(why);
        g_free(why);
        g_free(cpath);
        return;
    }
    char head[MAX_HEADER + 3];
    ssize_t got = pread(fd, head, MAX_HEADER + 2, 0);
    char *nl = got > 0 ? (char *)memchr(head, '\n', (size_t)got) : NULL;
    int at[NCONN], ncols = 0;
    if (nl) {
        *nl = 0;
        size_t hl = (size_t)(nl - head);
        if (hl > 0 && head[hl - 1] == '\r')
            head[hl - 1] = 0;
    }
    if (!nl || memchr(head, 0, (size_t)(nl - head)) != NULL ||
        !column_positions(head, CONN_COLUMNS, NCONN, K_TUNNEL, at, &ncols, &why)) {
        close(fd);
        st.conns_err = g_strdup_printf("%s in %s", why ? why : "no header line", cpath);
        g_free(why);
        g_free(cpath);
        return;
    }
    gboolean standard = strcmp(head, CONNS_HEADER) == 0;
    done = (guint64)(nl - head) + 1;
    st.conns = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    guint32 bad = 0, first_bad = 0, n = 0;
    GString *line = g_string_new(NULL);
    gboolean too_long = FALSE;
    char *chunk = (char *)g_malloc(65536);
    for (;;) {
        ssize_t r = done < size ? pread(fd, chunk, 65536 < size - done ? 65536 : (size_t)(size - done), (off_t)done)
                                : 0;
        gboolean end = r <= 0;
        size_t i = 0;
        while (end ? line->len > 0 || too_long : i < (size_t)r) {
            const char *e = end ? NULL : (const char *)memchr(chunk + i, '\n', (size_t)r - i);
            size_t take = e ? (size_t)(e - chunk) - i : (end ? 0 : (size_t)r - i);
            if (!too_long) {
                if (line->len + take > MAX_CONN_LINE + 1)
                    too_long = TRUE;
                else
                    g_string_append_len(line, chunk + i, (gssize)take);
            }
            i += take;
            if (!e && !end)
                break;
            i++; /* the line end */
            /* a whole line */
            n++;
            if (!too_long && line->len > 0 && line->str[line->len - 1] == '\r')
                g_string_truncate(line, line->len - 1);
            gboolean ok = FALSE, empty = !too_long && line->len == 0;
            guint32 id = 0;
            if (!too_long && !empty && !memchr(line->str, 0, line->len)) {
                char *text = NULL;
                if (standard) {
                    text = g_strdup(line->str);
                } else {
                    /* into CONNS_HEADER's order (no field needs quoting) */
                    char **fields = g_strsplit(line->str, ",", -1);
                    if ((int)g_strv_length(fields) == ncols) {
                        GString *o = g_string_new(NULL);
                        for (int k = 0; k < NCONN; k++) {
                            if (k)
                                g_string_append_c(o, ',');
                            if (at[k] >= 0)
                                g_string_append(o, fields[at[k]]);
                        }
                        text = g_string_free(o, FALSE);
                    }
                    g_strfreev(fields);
                }
                if (text && strlen(text) <= MAX_CONN_LINE) {
                    char *copy = g_strdup(text);
                    ok = conn_line_ok(copy, &id);
                    g_free(copy);
                }
                if (ok && !g_hash_table_contains(st.conns, GUINT_TO_POINTER(id)))
                    g_hash_table_insert(st.conns, GUINT_TO_POINTER(id), text);
                else
                    g_free(text);
            }
            if (!ok && !empty) {
                bad++;
                if (!first_bad)
                    first_bad = n + 1;
            }
            g_string_truncate(line, 0);
            too_long = FALSE;
            if (end)
                break;
        }
        if (end)
            break;
        done += (guint64)r;
    }
    g_free(chunk);
    g_string_free(line, TRUE);
    close(fd);
    if (bad)
        st.conns_err = g_strdup_printf("%u malformed line(s), the first line %u, left out of %s", bad, first_bad, cpath);
    g_free(cpath);
}

/* Whether the record (client, server) belongs to a row sent src > dst. */
static gboolean belongs(const char *conn, const char *client, const char *server, const char *src, const char *dst)
{
    if ((!strcmp(client, src) && !strcmp(server, dst)) || (!strcmp(client, dst) && !strcmp(server, src)))
        return TRUE;
    if (!st.conns_err)
        st.conns_err = g_strdup_printf("connection %s is %s > %s there, its rows %s > %s", conn, client, server, src, dst);
    return FALSE;
}

/* The record of connection conn split into its fields (in a copy that the
 * caller frees), or NULL. */
static char *connection_of(const char *conn, const char *src, const char *dst, const char *f[NCONN])
{
    if (!st.conns_loaded)
        load_connections();
    if (!st.conns)
        return NULL;
    guint64 id;
    if (!check_uint(conn, 4294967295u, &id))
        return NULL;
    const char *line = (const char *)g_hash_table_lookup(st.conns, GUINT_TO_POINTER((guint32)id));
    if (!line)
        return NULL;
    char *copy = g_strdup(line);
    int n = 0;
    f[n++] = copy;
    for (char *p = copy; *p && n < NCONN; p++) {
        if (*p == ',') {
            *p = 0;
            f[n++] = p + 1;
        }
    }
    if (n != NCONN || !belongs(conn, f[K_CLIENT], f[K_SERVER], src, dst)) {
        g_free(copy);
        return NULL;
    }
    return copy;
}

/* ------------------------------------------------------------------------
 * Related frames, both ways
 * ------------------------------------------------------------------------ */

static int relation_of(const char *events)
{
    for (size_t r = 0; r < NRELATIONS; r++) {
        size_t cl = strlen(RELATIONS[r][0]);
        const char *p = events;
        while ((p = strstr(p, RELATIONS[r][0])) != NULL) {
            gboolean start = p == events || p[-1] == ';';
            gboolean end = p[cl] == 0 || p[cl] == ';';
            if (start && end)
                return (int)r;
            p++;
        }
    }
    return (int)NRELATIONS;
}

static int back_cmp(const void *a, const void *b)
{
    const back_link *x = (const back_link *)a, *y = (const back_link *)b;
    if (x->target != y->target)
        return x->target < y->target ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order ? 1 : 0);
}

/* One line of the sidecar (without its line end) into a back link. */
static void back_line(const char *line, size_t len, parsed_row *pr, guint32 *cap)
{
    char frame[16], rel[16];
    const char *events = NULL;
    size_t elen = 0;
    char *ev_copy = NULL;
    if (!st.standard) {
        row_t r;
        char *why = parse_row_as_header(line, len, pr, &r);
        if (why) {
            g_free(why);
            return;
        }
        size_t fl = strlen(r.f[F_FRAME]), rl = strlen(r.f[F_RELATED]);
        if (!all_digits(r.f[F_FRAME], fl) || !lower_digit_dash(r.f[F_EVENTS], strlen(r.f[F_EVENTS]), TRUE) ||
            !all_digits(r.f[F_RELATED], rl) || rl > 10 || fl > 10)
            return;
        memcpy(frame, r.f[F_FRAME], fl + 1);
        memcpy(rel, r.f[F_RELATED], rl + 1);
        ev_copy = g_strdup(r.f[F_EVENTS]);
    } else {
        /* ",(%d+)\r?$" */
        size_t e = len;
        if (e > 0 && line[e - 1] == '\r')
            e--;
        size_t s = e;
        while (s > 0 && line[s - 1] >= '0' && line[s - 1] <= '9')
            s--;
        if (s == e || s == 0 || line[s - 1] != ',' || e - s > 10)
            return;
        memcpy(rel, line + s, e - s);
        rel[e - s] = 0;
        /* "^%d+,%d+%.%d+," and the events field */
        size_t p = 0;
        while (p < len && line[p] >= '0' && line[p] <= '9')
            p++;
        if (p == 0 || p > 10 || p >= len || line[p] != ',')
            return;
        memcpy(frame, line, p);
        frame[p] = 0;
        size_t q = p + 1, d = q;
        while (q < len && line[q] >= '0' && line[q] <= '9')
            q++;
        if (q == d || q >= len || line[q] != '.')
            return;
        d = ++q;
        while (q < len && line[q] >= '0' && line[q] <= '9')
            q++;
        if (q == d || q >= len || line[q] != ',')
            return;
        /* ROW_EVENTS: ten more fields after the frame, then the events */
        q = p;
        for (int k = 0; k < 10; k++) {
            const char *c = (const char *)memchr(line + q + 1, ',', len - q - 1);
            if (!c)
                return;
            q = (size_t)(c - line);
        }
        size_t es = q + 1, ee = es;
        while (ee < len && line[ee] != ',')
            ee++;
        if (ee >= len || !lower_digit_dash(line + es, ee - es, TRUE))
            return;
        events = line + es;
        elen = ee - es;
        ev_copy = g_strndup(events, elen);
    }
    guint64 target = digits_value(rel, strlen(rel)), from = digits_value(frame, strlen(frame));
    if (target > G_MAXUINT32 || from > G_MAXUINT32) {
        g_free(ev_copy);
        return;
    }
    if (st.nback + 1 > *cap) {
        *cap = *cap ? *cap * 2 : 256;
        st.back = (back_link *)g_realloc(st.back, (size_t)*cap * sizeof(back_link));
    }
    back_link *b = &st.back[st.nback];
    b->target = (guint32)target;
    b->from = (guint32)from;
    b->relation = (guint8)relation_of(ev_copy);
    b->order = st.nback;
    st.nback++;
    g_free(ev_copy);
}

static void back_links(void)
{
    if (st.back_built)
        return;
    st.back_built = TRUE;
    guint32 cap = 0, budget = st.rows + 1; /* never more lines than the index counted rows */
    parsed_row pr = { { 0 }, 0, NULL, 0 };
    reader rd = { st.fd, st.size, 0, NULL, 0, 0, 0, FALSE };
    rd.buf = (char *)g_malloc(CHUNK + MAX_ROW + 16);
    if (!refill(&rd))
        goto out;
    for (;;) {
        const char *np = rd.pos < rd.len ? (const char *)memchr(rd.buf + rd.pos, '\n', rd.len - rd.pos) : NULL;
        if (!np && !rd.eof && rd.len - rd.pos <= MAX_ROW) {
            if (!refill(&rd))
                break;
            continue;
        }
        size_t end = np ? (size_t)(np - rd.buf) : rd.len;
        if (!np && end == rd.pos)
            break;
        if (budget-- == 0)
            break;
        back_line(rd.buf + rd.pos, end - rd.pos, &pr, &cap);
        if (!np)
            break;
        rd.pos = end + 1;
    }
out:
    g_free(rd.buf);
    g_free(pr.scratch);
    if (st.nback)
        qsort(st.back, st.nback, sizeof(back_link), back_cmp);
}

/* ------------------------------------------------------------------------
 * Checking a row against its frame
 * ------------------------------------------------------------------------ */

static double frame_time(packet_info *pinfo)
{
    return (double)pinfo->abs_ts.secs + (double)pinfo->abs_ts.nsecs / 1000000000.0;
}

/* Whether the row's ts is within 1 microsecond of the frame's time (the
 * frame's time as the Lua plugin sees it: a double). */
static gboolean ts_matches(const char *ts_s, const char *ts_f, packet_info *pinfo)
{
    double t = frame_time(pinfo), fs = floor(t);
    double fns = floor((t - fs) * 1e9 + 0.5);
    double rs = (double)digits_value(ts_s, strlen(ts_s)), rns = (double)digits_value(ts_f, 9);
    double d = (rs - fs) * 1000000000.0 + (rns - fns);
    return d > -TS_TOLERANCE_NS && d < TS_TOLERANCE_NS;
}

static char *frame_time_text(packet_info *pinfo)
{
    double t = frame_time(pinfo), secs = floor(t);
    double usecs = floor((t - secs) * 1e6 + 0.5);
    if (usecs >= 1000000) {
        secs += 1;
        usecs -= 1000000;
    }
    return g_strdup_printf("%.0f.%06.0f", secs, usecs);
}

typedef struct {
    gboolean found;
    char flags[9];
    guint32 seq;
    gboolean has_len;
    gint64 len;
    gboolean v4;
    char src[32], dst[32];
} frame_tcp_t;

/* Appends the decimal digits of v to p; returns the end. */
static char *put_uint(char *p, unsigned v)
{
    char d[10];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = d[--n];
    return p;
}

/* "a.b.c.d:port" into out (at least 22 bytes), as snprintf would write it. */
static void endpoint_v4(char *out, const guint8 *a, unsigned port)
{
    char *p = out;
    for (int i = 0; i < 4; i++) {
        p = put_uint(p, a[i]);
        *p++ = i < 3 ? '.' : ':';
    }
    p = put_uint(p, port);
    *p = 0;
}

/* The frame's TCP header as the sidecar sees it (see the Lua plugin's
 * frame_tcp): the first place after 20 bytes where the frame's two ports
 * follow each other with a plausible data offset. */
static void frame_tcp(tvbuff_t *tvb, guint16 sp, guint16 dp, frame_tcp_t *out)
{
    memset(out, 0, sizeof *out);
    gint n = (gint)tvb_captured_length(tvb);
    if (n > 256)
        n = 256;
    if (n < 34)
        return;
    const guint8 *raw = tvb_get_ptr(tvb, 0, n);
    guint8 ports[4] = { (guint8)(sp >> 8), (guint8)sp, (guint8)(dp >> 8), (guint8)dp };
    gint a = 20, offset = 0;
    for (;;) {
        const guint8 *m = NULL;
        for (gint i = a; i + 4 <= n; i++) {
            if (memcmp(raw + i, ports, 4) == 0) {
                m = raw + i;
                break;
            }
        }
        if (!m)
            return;
        a = (gint)(m - raw);
        if (a + 14 > n)
            return;
        offset = raw[a + 12] >> 4;
        if (offset >= 5)
            break;
        a++;
    }
    out->seq = ((guint32)raw[a + 4] << 24) | ((guint32)raw[a + 5] << 16) | ((guint32)raw[a + 6] << 8) | raw[a + 7];
    for (int ihl = 5; ihl <= 15; ihl++) {
        gint q = a - 4 * ihl;
        if (q < 0)
            break;
        if (raw[q] == 64 + ihl && raw[q + 9] == 6) {
            gint total = raw[q + 2] * 256 + raw[q + 3];
            /* total 0: a segmentation offload packet, whose length the header does not give */
            if (total > 0) {
                out->has_len = TRUE;
                out->len = total - 4 * ihl - 4 * offset;
            }
            endpoint_v4(out->src, raw + q + 12, sp);
            endpoint_v4(out->dst, raw + q + 16, dp);
            out->v4 = TRUE;
            break;
        }
    }
    if (!out->has_len && !out->v4 && a >= 40 && (raw[a - 40] >> 4) == 6 && raw[a - 34] == 6) {
        out->has_len = TRUE;
        out->len = (raw[a - 36] * 256 + raw[a - 35]) - 4 * offset;
    }
    if (out->has_len && out->len < 0)
        out->has_len = FALSE;
    static const char LETTERS[] = "FSRPAUEC";
    int k = 0;
    for (int bit = 0; bit < 8; bit++)
        if (raw[a + 13] & (1 << bit))
            out->flags[k++] = LETTERS[bit];
    out->flags[k] = 0;
    out->found = TRUE;
}

static char *endpoint_text(packet_info *pinfo, const address *addr, guint32 port, gboolean v6)
{
    char *a = address_to_display(pinfo->pool, addr);
    return v6 ? wmem_strdup_printf(pinfo->pool, "[%s]:%u", a, port) : wmem_strdup_printf(pinfo->pool, "%s:%u", a, port);
}

/* NULL when the row is the frame's, or what differs (newly allocated). */
static char *row_mismatch(tvbuff_t *tvb, packet_info *pinfo, const row_t *r, const char *ts_s, const char *ts_f)
{
    if (!ts_matches(ts_s, ts_f, pinfo)) {
        char *t = frame_time_text(pinfo);
        char *m = g_strdup_printf("is at %s, its row at %s.%s", t, ts_s, ts_f);
        g_free(t);
        return m;
    }
    const char *src = r->f[F_SRC], *dst = r->f[F_DST];
    guint16 sp = (guint16)pinfo->srcport, dp = (guint16)pinfo->destport;
    frame_tcp_t ft;
    frame_tcp(tvb, sp, dp, &ft);
    if (!ft.v4 || strcmp(ft.src, src) || strcmp(ft.dst, dst)) {
        /* not IPv4, or the header's bytes say otherwise: Wireshark's
         * addresses (those of the innermost IP layer) decide */
        gboolean v6 = src[0] == '[';
        const char *fsrc = endpoint_text(pinfo, &pinfo->src, pinfo->srcport, v6);
        const char *fdst = endpoint_text(pinfo, &pinfo->dst, pinfo->destport, v6);
        if (strcmp(fsrc, src) || strcmp(fdst, dst))
            return g_strdup_printf("is %s > %s, its row %s > %s", fsrc, fdst, src, dst);
    }
    if (!ft.found)
        return NULL;
    if (strcmp(ft.flags, r->f[F_FLAGS]))
        return g_strdup_printf("has flags %s, its row %s", ft.flags, r->f[F_FLAGS]);
    guint64 len = digits_value(r->f[F_LEN], strlen(r->f[F_LEN]));
    if (ft.has_len && (guint64)ft.len != len)
        return g_strdup_printf("carries %" G_GINT64_FORMAT " payload bytes, its row %" G_GUINT64_FORMAT, ft.len, len);
    if (!PINFO_FD_VISITED(pinfo)) {
        guint32 seq = (guint32)digits_value(r->f[F_SEQ], strlen(r->f[F_SEQ]));
        guint32 base = ft.seq - seq;
        guint32 c = (guint32)digits_value(r->f[F_CONN], strlen(r->f[F_CONN]));
        seq_base *b = (seq_base *)g_hash_table_lookup(st.seq_bases, GUINT_TO_POINTER(c));
        if (!b) {
            b = g_new0(seq_base, 1);
            g_hash_table_insert(st.seq_bases, GUINT_TO_POINTER(c), b);
        }
        guint32 *slot = NULL;
        gboolean *known = NULL;
        if (!b->first_src || !strcmp(b->first_src, src)) {
            if (!b->first_src)
                b->first_src = g_strdup(src);
            slot = &b->first_base;
            known = &b->first_known;
        } else if (!b->other_src || !strcmp(b->other_src, src)) {
            if (!b->other_src)
                b->other_src = g_strdup(src);
            slot = &b->other_base;
            known = &b->other_known;
        }
        if (slot) {
            const char *fl = r->f[F_FLAGS];
            gboolean syn = strchr(fl, 'S') && !strchr(fl, 'R');
            if (*known && *slot != base && !syn)
                return g_strdup_printf("has relative seq %u, its row %s", (guint32)(ft.seq - *slot), r->f[F_SEQ]);
            *slot = base;
            *known = TRUE;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------
 * The Info column tag and expert items
 * ------------------------------------------------------------------------ */

static char *info_tag(const char *events, const char *calls, const char *side)
{
    const char *pre = NULL, *post = NULL;
    GString *extra = g_string_new(NULL);
    char *copy = g_strdup(events);
    for (char *save = NULL, *code = strtok_r(copy, ";", &save); code; code = strtok_r(NULL, ";", &save)) {
        const char *fin = NULL, *rst = NULL;
        for (size_t i = 0; i < COUNT(FIN_CODES); i++)
            if (!strcmp(code, FIN_CODES[i][0]))
                fin = FIN_CODES[i][1];
        for (size_t i = 0; i < COUNT(RST_CODES); i++)
            if (!strcmp(code, RST_CODES[i][0]))
                rst = RST_CODES[i][1];
        if (fin && !pre) {
            pre = fin;
            post = "";
        } else if (rst && !pre) {
            pre = "RST";
            post = rst;
        } else if (rst) {
            if (extra->len)
                g_string_append(extra, "; ");
            g_string_append_printf(extra, "RST %s", rst);
        } else if (in_list(code, strlen(code), TAG_CODES, COUNT(TAG_CODES))) {
            if (extra->len)
                g_string_append(extra, "; ");
            g_string_append(extra, code);
        }
    }
    g_free(copy);
    char *tag = NULL;
    if (pre || extra->len) {
        GString *t = g_string_new("[");
        if (!pre) {
            g_string_append(t, extra->str);
        } else {
            g_string_append_printf(t, "%s %s%s%s", pre, side, *post ? " " : "", post);
            if (*calls)
                g_string_append_printf(t, ": %s", calls);
            if (extra->len)
                g_string_append_printf(t, "; %s", extra->str);
        }
        g_string_append_c(t, ']');
        tag = g_string_free(t, FALSE);
    }
    g_string_free(extra, TRUE);
    return tag;
}

/* Whether the events give the row an Info tag (a FIN or RST kind, or a
 * code with a part of its own), without making the tag. */
static gboolean tagged(const char *events)
{
    const char *cur = events, *code;
    size_t len;
    while ((code = next_part(&cur, ";", &len)) != NULL) {
        for (size_t i = 0; i < COUNT(FIN_CODES); i++)
            if (strlen(FIN_CODES[i][0]) == len && !memcmp(code, FIN_CODES[i][0], len))
                return TRUE;
        for (size_t i = 0; i < COUNT(RST_CODES); i++)
            if (strlen(RST_CODES[i][0]) == len && !memcmp(code, RST_CODES[i][0], len))
                return TRUE;
        if (in_list(code, len, TAG_CODES, COUNT(TAG_CODES)))
            return TRUE;
    }
    return FALSE;
}

static void add_experts(packet_info *pinfo, proto_item *item, const char *events)
{
    const char *cur = events, *code;
    size_t len;
    while ((code = next_part(&cur, ";", &len)) != NULL) {
        int i = event_index(code, len);
        if (i >= 0) {
            if (EVENT_SPEC[i].group)
                expert_add_info(pinfo, item, &ei_event[i]);
        } else {
            expert_add_info_format(pinfo, item, &ei_unknown_event, "tcpshut: unknown event code %.*s", (int)len, code);
        }
    }
}

static void add_problem(proto_tree *tree, packet_info *pinfo, tvbuff_t *tvb, expert_field *ei, const char *text)
{
    proto_item *ti = proto_tree_add_item(tree, proto_tcpshut, tvb, 0, 0, ENC_NA);
    expert_add_info_format(pinfo, ti, ei, "%s", text);
}

/* The whole sidecar's error (st.err): its expert item and, below it, the
 * sidecar's full path and where it was found. Wireshark cuts an item's
 * text at 240 bytes, so the texts say the sidecar's file name last and
 * leave the whole path to this item's value (-e tcpshut.sidecar_file). */
static void show_error(proto_tree *tree, packet_info *pinfo, tvbuff_t *tvb)
{
    proto_item *ti = proto_tree_add_item(tree, proto_tcpshut, tvb, 0, 0, ENC_NA);
    expert_add_info_format(pinfo, ti, st.err_ei, "%s", st.err);
    proto_tree *sub = proto_item_add_subtree(ti, ett_tcpshut);
    proto_item *path = proto_tree_add_string(sub, hf_sidecar_file, tvb, 0, 0, st.path);
    proto_item_append_text(path, " (from %s)", st.source);
}

/* Adds text[0..len) as a string item (copied by Wireshark). */
static void add_part(proto_tree *t, int hf, tvbuff_t *tvb, const char *text, size_t len)
{
    char buf[MAX_FIELD + 1];
    if (len > MAX_FIELD)
        len = MAX_FIELD; /* never: fields are checked to be at most MAX_FIELD bytes */
    memcpy(buf, text, len);
    buf[len] = 0;
    proto_tree_add_string(t, hf, tvb, 0, 0, buf);
}

/* One item per distinct call of a "steps > candidates |" list, in order. */
static void add_calls(proto_tree *t, int hf, tvbuff_t *tvb, const char *list)
{
    const char *cur = list, *call;
    size_t len;
    while ((call = next_part(&cur, ">|", &len)) != NULL) {
        /* seen before in the list? */
        const char *back = list, *prev;
        size_t plen;
        gboolean dup = FALSE;
        while (!dup && (prev = next_part(&back, ">|", &plen)) != NULL && prev < call)
            dup = plen == len && memcmp(prev, call, len) == 0;
        if (!dup)
            add_part(t, hf, tvb, call, len);
    }
}

static gboolean any_referenced(proto_tree *tree, const int *hfs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (proto_field_is_referenced(tree, hfs[i]))
            return TRUE;
    return FALSE;
}

/* ------------------------------------------------------------------------
 * tshark's command line
 * ------------------------------------------------------------------------ */

/* This process's command line (/proc/self/cmdline), its arguments split, or
 * NULL when it cannot be read; free it with g_strfreev. */
static char **own_argv(int *argc)
{
    gchar *text = NULL;
    gsize len = 0;
    *argc = 0;
    if (!g_file_get_contents("/proc/self/cmdline", &text, &len, NULL))
        return NULL;
    if (len == 0 || text[len - 1] != 0) {
        g_free(text);
        return NULL;
    }
    GPtrArray *argv = g_ptr_array_new();
    for (gsize at = 0; at < len; at += strlen(text + at) + 1)
        g_ptr_array_add(argv, g_strdup(text + at));
    *argc = (int)argv->len;
    g_ptr_array_add(argv, NULL);
    g_free(text);
    return (char **)g_ptr_array_free(argv, FALSE);
}

/* Whether argv[0] names tshark. */
static gboolean is_tshark(char **argv, int argc)
{
    if (argc < 1)
        return FALSE;
    char *name = g_path_get_basename(argv[0]);
    gboolean tshark = strcmp(name, "tshark") == 0;
    g_free(name);
    return tshark;
}

/* Whether this process is tshark dissecting each frame once, in order, so
 * that a frame it has passed is never dissected again: not with -2 (its
 * second pass dissects every frame again), and not the GUI (which does on
 * every click, filter and tap). Any option group with a 2 anywhere in it
 * counts as -2, an option's value too: wrongly keeping the post-dissector
 * only costs time. Read once. */
static gboolean one_pass_tshark(void)
{
    static int known = -1;
    if (known >= 0)
        return known;
    int argc;
    char **argv = own_argv(&argc);
    known = argv && is_tshark(argv, argc);
    for (int i = 1; known && i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1] != '-' && strchr(argv[i], '2'))
            known = 0;
    g_strfreev(argv);
    return known;
}

/* ------------------------------------------------------------------------
 * Wireshark 4.0's tshark -T fields: a shown tree nobody reads
 * ------------------------------------------------------------------------ */

#if WIRESHARK_VERSION_MAJOR == 4 && WIRESHARK_VERSION_MINOR < 2
/* tshark 4.0 builds a shown ("visible") tree for -T fields, as it does for
 * -V, -T pdml and -T json, so proto_field_is_referenced() is TRUE for every
 * field and a plugin cannot tell from the tree that only the -e fields are
 * printed (4.2 and later build a tree that is not shown there and prime it
 * with the -e fields). Adding every row's items then costs more than the
 * whole budget of issue #13 (docs/performance.md, "Seventh round"). So the
 * plugin reads tshark's own command line, once: when it says -T fields and
 * no -e names a tcpshut or expert field, the tree's items are read only
 * through what primes them (a -Y or -R filter, a tap's filter, a custom
 * column, a Lua Field extractor: each sets the field's ref_type), and a
 * frame whose tcpshut and expert fields nobody primed gets what a frame
 * without a tree gets: the Info tag and the expert items. Anything the
 * parse does not know for sure (another program, an option it does not
 * know, an argument that is not an option) keeps the whole tree. */

/* tshark 4.0's short options that take a value (its OPTSTRING) and those
 * that take none. */
static const char SHORT_WITH_VALUE[] = "abBcdefiACEFGHjJKMNoOrRsStTuUwWXyYz";
static const char SHORT_WITHOUT[] = "2DILpnghlPqQvVx";
static const char *const LONG_WITHOUT[] = {
    "help", "version", "monitor-mode", "list-interfaces", "list-data-link-types", "no-promiscuous-mode",
    "list-time-stamp-types", "print", "color", "no-duplicate-keys",
};
static const char *const LONG_WITH_VALUE[] = {
    "interface", "snapshot-length", "buffer-size", "linktype", "time-stamp-type", "autostop", "ring-buffer",
    "read-file", "read-filter", "display-filter", "enable-protocol", "disable-protocol", "enable-heuristic",
    "disable-heuristic", "capture-comment", "hexdump", "export-objects", "export-tls-session-keys",
    "elastic-mapping-filter", "temp-dir", "log-level", "log-fatal", "log-domains", "log-debug", "log-noisy",
    "log-file", "log-fatal-domains",
};

/* Whether an -e field could show something this plugin adds: a tcpshut
 * field or an expert field (the expert items hang under tcpshut's items). */
static gboolean shows_our_items(const char *field)
{
    return g_ascii_strncasecmp(field, "tcpshut", 7) == 0 || g_ascii_strncasecmp(field, "_ws.expert", 10) == 0;
}

/* Whether argv (argc strings) is tshark's with -T fields and no -e field of
 * ours, parsed as tshark 4.0's getopt parses it. */
static gboolean fields_without_ours(char **argv, int argc)
{
    if (!is_tshark(argv, argc))
        return FALSE;
    int formats = 0;
    gboolean fields = FALSE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == 0 || strcmp(a, "--") == 0)
            return FALSE; /* not an option: tshark might take options after it */
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            if (in_list(a + 2, n, LONG_WITH_VALUE, COUNT(LONG_WITH_VALUE))) {
                if (!eq && ++i >= argc)
                    return FALSE;
            } else if (eq || !in_list(a + 2, n, LONG_WITHOUT, COUNT(LONG_WITHOUT))) {
                return FALSE;
            }
            continue;
        }
        for (int j = 1; a[j]; j++) {
            char c = a[j];
            if (strchr(SHORT_WITHOUT, c))
                continue;
            if (!strchr(SHORT_WITH_VALUE, c))
                return FALSE;
            const char *value = a[j + 1] ? a + j + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!value)
                return FALSE;
            if (c == 'T') {
                formats++;
                fields = strcmp(value, "fields") == 0;
            } else if (c == 'e' && shows_our_items(value)) {
                return FALSE;
            }
            break;
        }
    }
    return formats == 1 && fields;
}

/* fields_without_ours() of this process's command line, read once. */
static gboolean tshark_fields_without_ours(void)
{
    static int known = -1;
    if (known >= 0)
        return known;
    int argc;
    char **argv = own_argv(&argc);
    known = argv && fields_without_ours(argv, argc);
    g_strfreev(argv);
    return known;
}

/* A shown tree that nobody reads: tshark -T fields without our fields,
 * and no filter, tap or column primed tcpshut or an expert field. */
static gboolean shown_but_unread(void)
{
    static header_field_info *ours, *expert;
    if (!tshark_fields_without_ours())
        return FALSE;
    if (!ours) {
        if (proto_expert < 0)
            return FALSE;
        ours = proto_registrar_get_nth((guint)proto_tcpshut);
        expert = proto_registrar_get_nth((guint)proto_expert);
    }
    /* a primed field marks its protocol (the expert items' is _ws.expert) */
    return ours->ref_type == HF_REF_TYPE_NONE && expert->ref_type == HF_REF_TYPE_NONE;
}
#else
/* 4.2 and later: -T fields builds a tree that is not shown, primed with
 * the -e fields, and proto_field_is_referenced() says what is read. */
static gboolean shown_but_unread(void)
{
    return FALSE;
}
#endif

/* ------------------------------------------------------------------------
 * Dissection
 * ------------------------------------------------------------------------ */

static int dissect_tcpshut(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data _U_);

/* Whether the protocol is disabled by step_out(), not by the user. */
static gboolean stepped_out;

/* Called once the first frame dissected has what a capture without a usable
 * sidecar gets (the note, or the error): no later frame gets anything. In a
 * tshark that dissects each frame once, the plugin then disables its
 * protocol, so Wireshark stops calling the post-dissector at all
 * (have_postdissector() is FALSE for a disabled one): its per-frame call,
 * some 500 instructions in Wireshark (an exception frame, the layer list),
 * would otherwise be most of what the plugin costs a capture without a
 * sidecar (docs/performance.md, "Tenth round"). The next capture's init
 * enables it again. Wherever a frame may be dissected again (-2, the GUI)
 * the note must show each time, so the calls stay. */
static void step_out(void)
{
    if (!stepped_out && one_pass_tshark() && proto_can_toggle_protocol(proto_tcpshut)) {
        proto_set_decoding(proto_tcpshut, FALSE);
        stepped_out = TRUE;
    }
}

/* Undoes step_out(): a new capture, or the end. */
static void step_back_in(void)
{
    if (stepped_out) {
        proto_set_decoding(proto_tcpshut, TRUE);
        stepped_out = FALSE;
    }
}

static int dissect_row(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, guint32 num, gboolean bare)
{
    static parsed_row pr;
    size_t len = 0;
    const char *bytes = row_bytes(num, &len);
    if (!bytes) {
        char *m = g_strdup_printf("tcpshut: cannot read the sidecar row for frame %u; this row is not shown "
                                  "(sidecar %s)",
                                  num, st.path);
        add_problem(tree, pinfo, tvb, &ei_unreadable, m);
        g_free(m);
        return 0;
    }
    row_t r;
    char *why = parse_row_as_header(bytes, len, &pr, &r);
    if (!why)
        why = check_row(&r);
    if (why) {
        char *m = g_strdup_printf("tcpshut: malformed sidecar row for frame %u: %s; this row is not shown "
                                  "(sidecar %s)",
                                  num, why, st.path);
        add_problem(tree, pinfo, tvb, &ei_malformed, m);
        g_free(m);
        g_free(why);
        return 0;
    }
    char ts_s[16], ts_f[16];
    const char *dot = strchr(r.f[F_TS], '.');
    g_strlcpy(ts_s, r.f[F_TS], (size_t)(dot - r.f[F_TS]) + 1);
    g_strlcpy(ts_f, dot + 1, sizeof ts_f);
    char *differs = row_mismatch(tvb, pinfo, &r, ts_s, ts_f);
    if (differs) {
        /* A sidecar named by a preference, argument or environment variable
         * belongs to one capture: for another one, the sidecar beside it. */
        if (strcmp(st.source, BESIDE) != 0 && !st.fell_back) {
            char *autop = find_beside_capture();
            if (autop && strcmp(autop, st.path) != 0) {
                char *source = g_strdup_printf("%s (not %s)", BESIDE, st.source);
                state_clear();
                st.path = autop;
                st.source = source;
                st.fell_back = TRUE;
                g_free(differs);
                return dissect_tcpshut(tvb, pinfo, tree, NULL);
            }
            g_free(autop);
        }
        /* what differs first, the sidecar's file name last (show_error) */
        const char *slash = strrchr(st.path, '/');
        set_error(&ei_mismatch, g_strdup_printf("tcpshut: the sidecar does not match this capture: frame %u %s; "
                                                "nothing shown (sidecar %s)",
                                                num, differs, slash ? slash + 1 : st.path));
        g_free(differs);
        st.err_frame = num;
        g_free(st.flags);
        st.flags = NULL;
        show_error(tree, pinfo, tvb);
        return 0;
    }
    const char *conn = r.f[F_CONN], *src = r.f[F_SRC], *dst = r.f[F_DST], *events = r.f[F_EVENTS];
    const char *calls = r.f[F_CALLS], *summary = r.f[F_SUMMARY];
    static const int *conn_fields[] = { &hf_side, &hf_connection, &hf_outcome, &hf_closer, &hf_client, &hf_server,
                                        &hf_conn_frames, &hf_client_calls, &hf_client_call, &hf_server_calls,
                                        &hf_server_call, &hf_notes, &hf_tunnel };
    int conn_hfs[COUNT(conn_fields)];
    for (size_t i = 0; i < COUNT(conn_fields); i++)
        conn_hfs[i] = *conn_fields[i];
    gboolean record = !bare && any_referenced(tree, conn_hfs, COUNT(conn_hfs));
    const char *rec[NCONN];
    char *rec_copy = NULL;
    const char *client = NULL;
    if (record) {
        rec_copy = connection_of(conn, src, dst, rec);
        if (rec_copy)
            client = rec[K_CLIENT];
    } else if (*events && tagged(events)) {
        rec_copy = connection_of(conn, src, dst, rec);
        if (rec_copy)
            client = rec[K_CLIENT];
    }
    const char *side = client ? (!strcmp(client, src) ? "client" : "server") : src;
    if (*events && tagged(events)) {
        char *tag = info_tag(events, calls, side);
        if (tag) {
            col_append_str(pinfo->cinfo, COL_INFO, " ");
            col_append_str(pinfo->cinfo, COL_INFO, tag);
            g_free(tag);
        }
    }
    if (st.conns_err && !st.conns_err_shown) {
        st.conns_err_shown = TRUE;
        char *m = g_strdup_printf("tcpshut: the connections sidecar cannot be used: %s; connection fields are not "
                                  "shown where it fails",
                                  st.conns_err);
        add_problem(tree, pinfo, tvb, &ei_connections, m);
        g_free(m);
    }
    if (bare) {
        /* no tree: only the expert items (the row has events, or it would be plain) */
        if (*events)
            add_experts(pinfo, NULL, events);
        g_free(rec_copy);
        return 0;
    }
    proto_item *ti = proto_tree_add_item(tree, proto_tcpshut, tvb, 0, 0, ENC_NA);
    /* the item's text (-e tcpshut shows it), as the Lua plugin sets it */
    if (*summary)
        proto_item_set_text(ti, "TCP Shutdown: %s", summary);
    else
        proto_item_set_text(ti, "TCP Shutdown");
    proto_tree *t = proto_item_add_subtree(ti, ett_tcpshut);
    proto_tree_add_uint(t, hf_conn, tvb, 0, 0, (guint32)digits_value(conn, strlen(conn)));
    if (*events)
        proto_tree_add_string(t, hf_events, tvb, 0, 0, events);
    if (*events && proto_field_is_referenced(tree, hf_event)) {
        const char *cur = events, *code;
        size_t clen;
        while ((code = next_part(&cur, ";", &clen)) != NULL)
            add_part(t, hf_event, tvb, code, clen);
    }
    if (*r.f[F_SS])
        proto_tree_add_string(t, hf_sender_state, tvb, 0, 0, r.f[F_SS]);
    if (*r.f[F_RS])
        proto_tree_add_string(t, hf_receiver_state, tvb, 0, 0, r.f[F_RS]);
    if (*calls)
        proto_tree_add_string(t, hf_calls, tvb, 0, 0, calls);
    if (*calls && proto_field_is_referenced(tree, hf_call))
        add_calls(t, hf_call, tvb, calls);
    if (*summary)
        proto_tree_add_string(t, hf_summary, tvb, 0, 0, summary);
    if (*r.f[F_SEVERITY])
        proto_tree_add_string(t, hf_severity, tvb, 0, 0, r.f[F_SEVERITY]);
    if (*r.f[F_RELATED]) {
        proto_tree_add_uint(t, hf_related, tvb, 0, 0, (guint32)digits_value(r.f[F_RELATED], strlen(r.f[F_RELATED])));
        if (proto_field_is_referenced(tree, hf_relation)) {
            int rel = relation_of(events);
            proto_tree_add_string(t, hf_relation, tvb, 0, 0, rel < (int)NRELATIONS ? RELATIONS[rel][1] : "related");
        }
    }
    if (proto_field_is_referenced(tree, hf_related_by) || proto_field_is_referenced(tree, hf_related_by_relation)) {
        back_links();
        /* the first link to num */
        guint32 lo = 0, hi = st.nback;
        while (lo < hi) {
            guint32 mid = lo + (hi - lo) / 2;
            if (st.back[mid].target < num)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (guint32 i = lo; i < st.nback && st.back[i].target == num; i++) {
            int rel = st.back[i].relation;
            proto_tree_add_uint(t, hf_related_by, tvb, 0, 0, st.back[i].from);
            proto_tree_add_string(t, hf_related_by_relation, tvb, 0, 0,
                                  rel < (int)NRELATIONS ? RELATIONS[rel][2] : "related");
        }
    }
    if (record && client) {
        proto_tree_add_string(t, hf_side, tvb, 0, 0, side);
        proto_item *ci = proto_tree_add_item(t, hf_connection, tvb, 0, 0, ENC_NA);
        proto_item_set_text(ci, "Connection %s: %s, closer %s (%s > %s, frames %s-%s)", conn, rec[K_OUTCOME],
                            rec[K_CLOSER], rec[K_CLIENT], rec[K_SERVER], rec[K_FIRST], rec[K_LAST]);
        proto_tree *ct = proto_item_add_subtree(ci, ett_connection);
        proto_tree_add_string(ct, hf_outcome, tvb, 0, 0, rec[K_OUTCOME]);
        proto_tree_add_string(ct, hf_closer, tvb, 0, 0, rec[K_CLOSER]);
        proto_tree_add_string(ct, hf_client, tvb, 0, 0, rec[K_CLIENT]);
        proto_tree_add_string(ct, hf_server, tvb, 0, 0, rec[K_SERVER]);
        char frames[40]; /* two numbers of at most 15 digits */
        size_t fl = strlen(rec[K_FIRST]), ll = strlen(rec[K_LAST]);
        memcpy(frames, rec[K_FIRST], fl);
        frames[fl] = '-';
        memcpy(frames + fl + 1, rec[K_LAST], ll + 1);
        proto_tree_add_string(ct, hf_conn_frames, tvb, 0, 0, frames);
        if (*rec[K_CCALLS]) {
            proto_tree_add_string(ct, hf_client_calls, tvb, 0, 0, rec[K_CCALLS]);
            add_calls(ct, hf_client_call, tvb, rec[K_CCALLS]);
        }
        if (*rec[K_SCALLS]) {
            proto_tree_add_string(ct, hf_server_calls, tvb, 0, 0, rec[K_SCALLS]);
            add_calls(ct, hf_server_call, tvb, rec[K_SCALLS]);
        }
        if (*rec[K_NOTES])
            proto_tree_add_string(ct, hf_notes, tvb, 0, 0, rec[K_NOTES]);
        if (*rec[K_TUNNEL])
            proto_tree_add_string(ct, hf_tunnel, tvb, 0, 0, rec[K_TUNNEL]);
    }
    g_free(rec_copy);
    if (*events)
        add_experts(pinfo, ti, events);
    return 0;
}

static int dissect_tcpshut(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data _U_)
{
    guint32 num = pinfo->num;
    /* the hot path: a frame without a row, or whose row adds nothing here */
    if (G_LIKELY(st.flags != NULL && num <= st.last)) {
        guint8 flag = st.flags[num];
        if (flag == 0)
            return 0;
        /* an expert field (_ws.expert.message, ...; proto_expert is epan's
         * _ws.expert) is in the tree only on an item */
        gboolean bare = (!proto_field_is_referenced(tree, proto_tcpshut) &&
                         (proto_expert < 0 || !proto_field_is_referenced(tree, proto_expert))) ||
                        shown_but_unread();
        if ((flag == 1 || flag == 4) && bare)
            return 0;
        return dissect_row(tvb, pinfo, tree, num, bare);
    }
    if (!st.loaded) {
        load_sidecar();
        return dissect_tcpshut(tvb, pinfo, tree, data);
    }
    if (st.err) {
        /* One error for the whole capture, on the first frame dissected. */
        if (!st.err_frame)
            st.err_frame = num;
        if (st.err_frame == num) {
            show_error(tree, pinfo, tvb);
            step_out();
        }
        return 0;
    }
    if (!st.flags) {
        if (!st.path) {
            /* no sidecar anywhere: one quiet note on the first frame, no more */
            if (!st.note_frame)
                st.note_frame = num;
            if (st.note_frame == num) {
                proto_item *ti = proto_tree_add_item(tree, proto_tcpshut, tvb, 0, 0, ENC_NA);
                expert_add_info(pinfo, ti, &ei_no_sidecar);
                step_out();
            }
        }
        return 0;
    }
    /* past the last row: a TCP frame there means the sidecar ends early */
    if (num > st.last && pinfo->ptype == PT_TCP) {
        if (!st.short_frame)
            st.short_frame = num;
        if (st.short_frame == num) {
            char *m = g_strdup_printf("tcpshut: the sidecar ends early: its last row is frame %u, TCP frame %u and "
                                      "later have none (an interrupted tcpshut annotate? run it again; sidecar %s)",
                                      st.last, num, st.path);
            add_problem(tree, pinfo, tvb, &ei_short, m);
            g_free(m);
        }
    }
    return 0;
}

static void tcpshut_init(void)
{
    step_back_in();
    state_clear();
    resolve_sidecar();
}

static void tcpshut_cleanup(void)
{
    step_back_in();
    state_clear();
}

/* ------------------------------------------------------------------------
 * Registration
 * ------------------------------------------------------------------------ */

static void proto_register_tcpshut(void)
{
    static hf_register_info hf[] = {
        { &hf_events, { "Events", "tcpshut.events", FT_STRING, BASE_NONE, NULL, 0x0,
                        "Event codes, as in the sidecar (;-separated)", HFILL } },
        { &hf_event, { "Event", "tcpshut.event", FT_STRING, BASE_NONE, NULL, 0x0, "One event code", HFILL } },
        { &hf_sender_state, { "Sender state", "tcpshut.sender_state", FT_STRING, BASE_NONE, NULL, 0x0,
                              "RFC 9293 state of the sending side after this segment", HFILL } },
        { &hf_receiver_state, { "Receiver state", "tcpshut.receiver_state", FT_STRING, BASE_NONE, NULL, 0x0,
                                "RFC 9293 state of the receiving side after this segment", HFILL } },
        { &hf_calls, { "Likely socket calls", "tcpshut.calls", FT_STRING, BASE_NONE, NULL, 0x0,
                       "Steps joined by >, candidates by |", HFILL } },
        { &hf_call, { "Socket call", "tcpshut.call", FT_STRING, BASE_NONE, NULL, 0x0,
                      "One call of tcpshut.calls, a step or a candidate (tcpshut.call == \"shut_rd\")", HFILL } },
        { &hf_summary, { "Summary", "tcpshut.summary", FT_STRING, BASE_NONE, NULL, 0x0, "One-sentence explanation",
                         HFILL } },
        { &hf_severity, { "Severity", "tcpshut.severity", FT_STRING, BASE_NONE, NULL, 0x0,
                          "chat, note, warn or error", HFILL } },
        { &hf_conn, { "Connection", "tcpshut.conn", FT_UINT32, BASE_DEC, NULL, 0x0, "tcpshut connection id",
                      HFILL } },
        { &hf_related, { "Related frame", "tcpshut.related", FT_FRAMENUM, BASE_NONE, NULL, 0x0,
                         "The frame this one answers, acknowledges or repeats", HFILL } },
        { &hf_relation, { "Relation", "tcpshut.relation", FT_STRING, BASE_NONE, NULL, 0x0,
                          "How this frame relates to tcpshut.related (acknowledges the FIN, RST answering this "
                          "data, ...)",
                          HFILL } },
        { &hf_related_by, { "Related from frame", "tcpshut.related_by", FT_FRAMENUM, BASE_NONE, NULL, 0x0,
                            "A later frame whose tcpshut.related is this one (the other way of the link)", HFILL } },
        { &hf_related_by_relation, { "Relation from it", "tcpshut.related_by_relation", FT_STRING, BASE_NONE, NULL,
                                     0x0,
                                     "How that later frame relates to this one (FIN acknowledged by, answered by "
                                     "RST, ...)",
                                     HFILL } },
        { &hf_side, { "Sender side", "tcpshut.side", FT_STRING, BASE_NONE, NULL, 0x0,
                      "client or server: who sent this segment", HFILL } },
        { &hf_outcome, { "Outcome", "tcpshut.outcome", FT_STRING, BASE_NONE, NULL, 0x0,
                         "The connection's outcome: graceful, reset, refused, half-closed, open or unknown",
                         HFILL } },
        { &hf_closer, { "Closer", "tcpshut.closer", FT_STRING, BASE_NONE, NULL, 0x0,
                        "Who closed first: client, server, both, none or unknown", HFILL } },
        { &hf_client, { "Client", "tcpshut.client", FT_STRING, BASE_NONE, NULL, 0x0,
                        "The connection's client (ip:port)", HFILL } },
        { &hf_server, { "Server", "tcpshut.server", FT_STRING, BASE_NONE, NULL, 0x0,
                        "The connection's server (ip:port)", HFILL } },
        { &hf_client_calls, { "Client calls", "tcpshut.client_calls", FT_STRING, BASE_NONE, NULL, 0x0,
                              "The client's likely socket calls over the whole connection (steps >, candidates |)",
                              HFILL } },
        { &hf_server_calls, { "Server calls", "tcpshut.server_calls", FT_STRING, BASE_NONE, NULL, 0x0,
                              "The server's likely socket calls over the whole connection (steps >, candidates |)",
                              HFILL } },
        { &hf_client_call, { "Client call", "tcpshut.client_call", FT_STRING, BASE_NONE, NULL, 0x0,
                             "One call of tcpshut.client_calls (tcpshut.client_call == \"shut_rd\")", HFILL } },
        { &hf_server_call, { "Server call", "tcpshut.server_call", FT_STRING, BASE_NONE, NULL, 0x0,
                             "One call of tcpshut.server_calls (tcpshut.server_call == \"shut_rd\")", HFILL } },
        { &hf_conn_frames, { "Frames", "tcpshut.conn_frames", FT_STRING, BASE_NONE, NULL, 0x0,
                             "The connection's first and last frame", HFILL } },
        { &hf_connection, { "Connection", "tcpshut.connection", FT_NONE, BASE_NONE, NULL, 0x0,
                            "The connection's verdict (connections sidecar)", HFILL } },
        { &hf_notes, { "Notes", "tcpshut.notes", FT_STRING, BASE_NONE, NULL, 0x0, "The connection's notes, ;-joined",
                       HFILL } },
        { &hf_tunnel, { "Tunnel", "tcpshut.tunnel", FT_STRING, BASE_NONE, NULL, 0x0,
                        "The tunnels the connection came through, outermost first, joined by /", HFILL } },
        { &hf_sidecar_file, { "Sidecar", "tcpshut.sidecar_file", FT_STRING, BASE_NONE, NULL, 0x0,
                              "The full path of a sidecar that cannot be used, and where it was found (below its "
                              "error)",
                              HFILL } },
    };
    static gint *ett[] = { &ett_tcpshut, &ett_connection };
    static ei_register_info ei_fixed[] = {
        { &ei_short, { "tcpshut.sidecar_short", PI_MALFORMED, PI_WARN, "tcpshut: the sidecar ends early",
                       EXPFILL } },
        { &ei_connections, { "tcpshut.connections_unusable", PI_MALFORMED, PI_WARN,
                             "tcpshut: the connections sidecar cannot be used", EXPFILL } },
        { &ei_no_sidecar, { "tcpshut.no_sidecar", PI_PROTOCOL, PI_CHAT,
                            "tcpshut: no sidecar for this capture; `tcpshut annotate CAPTURE` makes "
                            "CAPTURE.tcpshut.csv beside it",
                            EXPFILL } },
        { &ei_unknown_event, { "tcpshut.unknown_event", PI_PROTOCOL, PI_NOTE, "tcpshut: unknown event code",
                               EXPFILL } },
        { &ei_mismatch, { "tcpshut.sidecar_mismatch", PI_MALFORMED, PI_ERROR,
                          "tcpshut: sidecar does not match this capture", EXPFILL } },
        { &ei_malformed, { "tcpshut.sidecar_malformed", PI_MALFORMED, PI_ERROR, "tcpshut: malformed sidecar",
                           EXPFILL } },
        { &ei_unreadable, { "tcpshut.sidecar_unreadable", PI_MALFORMED, PI_ERROR, "tcpshut: cannot read sidecar",
                            EXPFILL } },
    };
    /* one item per event code that has one; names and texts made once */
    static ei_register_info ei_events[NEVENTS];
    int nev = 0;
    for (size_t i = 0; i < NEVENTS; i++) {
        if (!EVENT_SPEC[i].group)
            continue;
        char *name = g_strdup_printf("tcpshut.%s", EVENT_SPEC[i].code);
        for (char *p = name; *p; p++)
            if (*p == '-')
                *p = '_';
        ei_register_info e = { &ei_event[i],
                               { name, EVENT_SPEC[i].group, EVENT_SPEC[i].severity,
                                 g_strdup_printf("tcpshut %s: %s", EVENT_SPEC[i].code, EVENT_SPEC[i].text),
                                 EXPFILL } };
        ei_events[nev++] = e;
    }

    proto_tcpshut = proto_register_protocol("TCP Shutdown", "TCPSHUT", "tcpshut");
    proto_register_field_array(proto_tcpshut, hf, array_length(hf));
    proto_register_subtree_array(ett, array_length(ett));
    expert_module_t *em = expert_register_protocol(proto_tcpshut);
    expert_register_field_array(em, ei_events, nev);
    expert_register_field_array(em, ei_fixed, array_length(ei_fixed));
    module_t *m = prefs_register_protocol(proto_tcpshut, NULL);
    prefs_register_string_preference(m, "sidecar", "Sidecar CSV file",
                                     "Path of the CAPTURE.tcpshut.csv written by `tcpshut annotate`. Empty: use the "
                                     "script argument, then $TCPSHUT_SIDECAR, then CAPTURE.tcpshut.csv beside the "
                                     "open capture (Linux).",
                                     &pref_sidecar);
    tcpshut_handle = register_dissector("tcpshut", dissect_tcpshut, proto_tcpshut);
    /* the mark lua/tcpshut.lua looks for: then it registers no protocol of its own */
    register_dissector("tcpshut_native", dissect_tcpshut, proto_tcpshut);
    register_init_routine(tcpshut_init);
    register_cleanup_routine(tcpshut_cleanup);
    st.fd = -1;
}

static void proto_reg_handoff_tcpshut(void)
{
    register_postdissector(tcpshut_handle);
}

void plugin_register(void)
{
    static proto_plugin plug;
    plug.register_protoinfo = proto_register_tcpshut;
    plug.register_handoff = proto_reg_handoff_tcpshut;
    proto_register_plugin(&plug);
}
