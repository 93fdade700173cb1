/*
 * pagevault native layer: one shared library that is both
 *   - a SQLite loadable extension (entry point sqlite3_pagevault_init), loaded by
 *     better-sqlite3 into its own SQLite, and
 *   - a Node-API addon, require()d from the same absolute path, so both share these globals.
 *
 * The extension registers the "pagevault" VFS and, on every connection it is loaded into, the SQL
 * function pagevault_connection() that returns a token naming that connection. The addon opens
 * destination connections on the VFS and drives sqlite3_backup_* from a registered source.
 *
 * The VFS keeps no database content: xWrite stages whole pages in memory until TypeScript drains them,
 * up to a cap in pages set per backup (a write past it is refused), xRead answers zeros with
 * SQLITE_IOERR_SHORT_READ, and the file size is tracked. Nothing here calls
 * into JavaScript and nothing here decides policy; TypeScript validates arguments and decides.
 * Every SQLite call goes through the API table handed to the entry point (sqlite3ext.h).
 *
 * One more mechanism, apart from SQLite: lockHolder() tells whether another process holds a POSIX
 * record lock on a byte range of a file (fcntl F_GETLK), which is how SQLite's unix VFS locks databases,
 * and lockExclusive()/releaseLock() take and drop such a lock (F_SETLK) the way SQLite takes EXCLUSIVE.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1

#define PV_EXPORT __attribute__((visibility("default")))
#define PV_VFS_NAME "pagevault"

/* ---------------------------------------------------------------- staging VFS */

typedef struct pv_file {
  sqlite3_file base;
  sqlite3_int64 size;    /* largest offset written, or the last truncation */
  int page_size;         /* every write must be exactly one page at a page boundary */
  int bad_write;         /* sticky: a write that was not one whole page was refused */
  int max_staged;        /* pages that may be staged at once; a write past it is refused */
  int over_cap;          /* sticky: a write was refused because max_staged pages were staged */
  int peak;              /* the most pages staged at once */
  double rereads;        /* reads below the file's size: of pages the destination wrote before */
  unsigned char reread_fill; /* what such reads answer: 0, or another byte to show the answer is unused */
  uint32_t *pgnos;       /* staged page numbers, in arrival order */
  unsigned char *data;   /* staged page bytes, page_size each */
  int head, count, cap;  /* drained-up-to index, end of the staged pages, capacity in pages */
} pv_file;

static int pv_close(sqlite3_file *f) {
  pv_file *p = (pv_file *)f;
  free(p->pgnos);
  free(p->data);
  p->pgnos = NULL;
  p->data = NULL;
  p->head = p->count = p->cap = 0;
  return SQLITE_OK;
}

/* A read below the size is of a page written (and drained) before: SQLite re-reads a spilled page that it
 * is about to overwrite whole. Nothing is kept to answer with, so those reads are counted, and answer
 * reread_fill, which a test sets to something other than zeros to show the answer is never used. */
static int pv_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off) {
  pv_file *p = (pv_file *)f;
  int below = off < p->size;
  if (below) p->rereads++;
  memset(buf, below ? p->reread_fill : 0, (size_t)amt);
  return SQLITE_IOERR_SHORT_READ;
}

/* Room for one more page: drained pages at the front are reclaimed first, then the buffer doubles, never
 * past max_staged pages. */
static int pv_make_room(pv_file *p) {
  if (p->count < p->cap) return SQLITE_OK;
  if (p->head > 0) {
    int n = p->count - p->head;
    memmove(p->pgnos, p->pgnos + p->head, (size_t)n * sizeof(uint32_t));
    memmove(p->data, p->data + (size_t)p->head * (size_t)p->page_size, (size_t)n * (size_t)p->page_size);
    p->head = 0;
    p->count = n;
    return SQLITE_OK;
  }
  int cap = p->cap ? p->cap * 2 : 256;
  if (cap > p->max_staged) cap = p->max_staged;
  uint32_t *pg = realloc(p->pgnos, (size_t)cap * sizeof(uint32_t));
  if (!pg) return SQLITE_NOMEM;
  p->pgnos = pg;
  unsigned char *d = realloc(p->data, (size_t)cap * (size_t)p->page_size);
  if (!d) return SQLITE_NOMEM;
  p->data = d;
  p->cap = cap;
  return SQLITE_OK;
}

/*
 * A write past the cap is refused with SQLITE_FULL, which is safe wherever SQLite makes it (backup.c, 3.53):
 * in sqlite3_backup_step it fails the step; inside the source connection's own commit, backupUpdate() keeps
 * the error in the backup (p->rc, returned by the next step) and never reports it to that commit. Either way
 * the destination's pager stops in its error state, and over_cap tells TypeScript why.
 */
static int pv_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off) {
  pv_file *p = (pv_file *)f;
  if (p->page_size <= 0 || amt != p->page_size || off % p->page_size != 0) {
    p->bad_write = 1;
    return SQLITE_IOERR_WRITE;
  }
  if (p->head == p->count) p->head = p->count = 0; /* everything drained: reuse from the start */
  if (p->count - p->head >= p->max_staged) {
    p->over_cap = 1;
    return SQLITE_FULL;
  }
  if (pv_make_room(p) != SQLITE_OK) return SQLITE_IOERR_NOMEM;
  p->pgnos[p->count] = (uint32_t)(off / p->page_size + 1);
  memcpy(p->data + (size_t)p->count * (size_t)p->page_size, buf, (size_t)amt);
  p->count++;
  if (p->count - p->head > p->peak) p->peak = p->count - p->head;
  if (off + amt > p->size) p->size = off + amt;
  return SQLITE_OK;
}

static int pv_truncate(sqlite3_file *f, sqlite3_int64 size) {
  ((pv_file *)f)->size = size;
  return SQLITE_OK;
}

static int pv_sync(sqlite3_file *f, int flags) {
  (void)f;
  (void)flags;
  return SQLITE_OK;
}

static int pv_file_size(sqlite3_file *f, sqlite3_int64 *size) {
  *size = ((pv_file *)f)->size;
  return SQLITE_OK;
}

static int pv_lock(sqlite3_file *f, int level) {
  (void)f;
  (void)level;
  return SQLITE_OK;
}

static int pv_check_reserved(sqlite3_file *f, int *out) {
  (void)f;
  *out = 0;
  return SQLITE_OK;
}

static int pv_file_control(sqlite3_file *f, int op, void *arg) {
  (void)f;
  (void)op;
  (void)arg;
  return SQLITE_NOTFOUND;
}

static int pv_sector_size(sqlite3_file *f) {
  (void)f;
  return 4096;
}

static int pv_device_characteristics(sqlite3_file *f) {
  (void)f;
  return SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

static const sqlite3_io_methods pv_io = {
    1,
    pv_close,
    pv_read,
    pv_write,
    pv_truncate,
    pv_sync,
    pv_file_size,
    pv_lock,
    pv_lock,
    pv_check_reserved,
    pv_file_control,
    pv_sector_size,
    pv_device_characteristics,
};

static int pv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags) {
  (void)vfs;
  (void)name;
  /* Only the destination's main database is ever opened: journal_mode=OFF and no temp files. */
  if (!(flags & SQLITE_OPEN_MAIN_DB)) return SQLITE_CANTOPEN;
  pv_file *p = (pv_file *)f;
  memset(p, 0, sizeof(*p));
  p->base.pMethods = &pv_io;
  if (out_flags) *out_flags = flags;
  return SQLITE_OK;
}

static int pv_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) {
  (void)vfs;
  (void)name;
  (void)sync_dir;
  return SQLITE_OK;
}

static int pv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
  (void)vfs;
  (void)name;
  (void)flags;
  *out = 0;
  return SQLITE_OK;
}

static int pv_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out) {
  (void)vfs;
  sqlite3_snprintf(n, out, "%s", name);
  return SQLITE_OK;
}

/* Randomness, sleep and time come from the default VFS. */
static sqlite3_vfs *pv_default_vfs(void) { return sqlite3_vfs_find(NULL); }

static int pv_randomness(sqlite3_vfs *vfs, int n, char *out) {
  (void)vfs;
  sqlite3_vfs *d = pv_default_vfs();
  return d->xRandomness(d, n, out);
}

static int pv_sleep(sqlite3_vfs *vfs, int us) {
  (void)vfs;
  sqlite3_vfs *d = pv_default_vfs();
  return d->xSleep(d, us);
}

static int pv_current_time(sqlite3_vfs *vfs, double *out) {
  (void)vfs;
  sqlite3_vfs *d = pv_default_vfs();
  return d->xCurrentTime(d, out);
}

static int pv_last_error(sqlite3_vfs *vfs, int n, char *out) {
  (void)vfs;
  if (n > 0) out[0] = 0;
  return 0;
}

static sqlite3_vfs pv_vfs = {
    1,                 /* iVersion */
    sizeof(pv_file),   /* szOsFile */
    512,               /* mxPathname */
    NULL,              /* pNext */
    PV_VFS_NAME,       /* zName */
    NULL,              /* pAppData */
    pv_open,
    pv_delete,
    pv_access,
    pv_full_pathname,
    NULL, NULL, NULL, NULL, /* no dynamic loading through this VFS */
    pv_randomness,
    pv_sleep,
    pv_current_time,
    pv_last_error,
};

/* ---------------------------------------------------------------- connection registry */

/* A connection that loaded the extension, named by a token the addon can be given from JavaScript.
 * The entry lives as long as the pagevault_connection() function on that connection: SQLite calls
 * pv_forget when the connection closes, so a stale token can never reach a freed sqlite3*.
 * A token is random (53 bits, so JavaScript holds it exactly) and bound to the thread that registered the
 * connection: THREADSAFE=2 lets only that thread use the connection, and it is the only thread that can
 * close it (better-sqlite3's Database lives in one isolate), so a connection resolved on its own thread
 * stays open for the rest of the native call. */
typedef struct pv_conn {
  sqlite3 *db;
  int64_t token;
  pthread_t thread;
  struct pv_conn *next;
} pv_conn;

static pthread_mutex_t pv_mutex = PTHREAD_MUTEX_INITIALIZER;
static pv_conn *pv_conns = NULL;

static void pv_forget(void *arg) {
  pv_conn *c = arg;
  pthread_mutex_lock(&pv_mutex);
  for (pv_conn **pp = &pv_conns; *pp; pp = &(*pp)->next) {
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  }
  pthread_mutex_unlock(&pv_mutex);
  free(c);
}

static pv_conn *pv_find_locked(int64_t token) {
  for (pv_conn *c = pv_conns; c; c = c->next) {
    if (c->token == token) return c;
  }
  return NULL;
}

typedef enum { PV_RESOLVED, PV_UNKNOWN, PV_FOREIGN } pv_resolution;

/* The connection a token names, if it is registered and was registered on the calling thread. */
static pv_resolution pv_resolve(int64_t token, sqlite3 **db) {
  pv_resolution r = PV_UNKNOWN;
  *db = NULL;
  pthread_mutex_lock(&pv_mutex);
  pv_conn *c = pv_find_locked(token);
  if (c && !pthread_equal(c->thread, pthread_self())) {
    r = PV_FOREIGN;
  } else if (c) {
    r = PV_RESOLVED;
    *db = c->db;
  }
  pthread_mutex_unlock(&pv_mutex);
  return r;
}

static void pv_connection_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  sqlite3_result_int64(ctx, ((pv_conn *)sqlite3_user_data(ctx))->token);
}

PV_EXPORT int sqlite3_pagevault_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
  pthread_mutex_lock(&pv_mutex);
  if (sqlite3_api && sqlite3_api != api) {
    pthread_mutex_unlock(&pv_mutex);
    /* Not api->mprintf via the macro: sqlite3_api is the other library's table. */
    if (err) *err = api->mprintf("pagevault is already bound to a different SQLite library in this process");
    return SQLITE_ERROR;
  }
  sqlite3_api = api;
  int rc = SQLITE_OK;
  if (!sqlite3_vfs_find(PV_VFS_NAME)) rc = sqlite3_vfs_register(&pv_vfs, 0);
  pthread_mutex_unlock(&pv_mutex);
  if (rc != SQLITE_OK) return rc;

  pv_conn *c = calloc(1, sizeof(*c));
  if (!c) return SQLITE_NOMEM;
  c->db = db;
  c->thread = pthread_self();
  pthread_mutex_lock(&pv_mutex);
  do {
    uint64_t r = 0;
    sqlite3_randomness((int)sizeof(r), &r);
    c->token = (int64_t)(r & ((UINT64_C(1) << 53) - 1));
  } while (c->token == 0 || pv_find_locked(c->token));
  c->next = pv_conns;
  pv_conns = c;
  pthread_mutex_unlock(&pv_mutex);
  /* Loading twice into one connection replaces the function; SQLite then calls pv_forget on the old entry. */
  rc = sqlite3_create_function_v2(db, "pagevault_connection", 0, SQLITE_UTF8, c, pv_connection_fn, NULL,
                                  NULL, pv_forget);
  if (rc != SQLITE_OK) return rc; /* SQLite already called pv_forget(c) on failure */
  return SQLITE_OK_LOAD_PERMANENTLY;
}

/* ---------------------------------------------------------------- addon: backups */

typedef struct pv_backup {
  sqlite3 *dest;
  sqlite3_backup *backup;
  pv_file *file;
  int next;     /* the next source page to copy, as of the last step (1 before the first) */
  int restarts; /* steps that found the copy sent back to page 1 */
} pv_backup;

static const napi_type_tag pv_backup_tag = {0x7061676576617531ULL, 0x6261636b75703031ULL};

#define NAPI_OK(call)                                   \
  do {                                                  \
    if ((call) != napi_ok) return pv_throw_pending(env); \
  } while (0)

static napi_value pv_throw_pending(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, "PAGEVAULT_NATIVE", "pagevault native call failed");
  return NULL;
}

static napi_value pv_throw(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static napi_value pv_throw_range(napi_env env, const char *msg) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return NULL;
}

/* SQLite's page sizes: a power of two from 512 to 65536. Everything that divides by it relies on this. */
static int pv_valid_page_size(int32_t n) { return n >= 512 && n <= 65536 && (n & (n - 1)) == 0; }

static napi_value pv_throw_page_size(napi_env env, int64_t n) {
  char msg[96];
  snprintf(msg, sizeof(msg), "pageSize must be a power of two from 512 to 65536, got %lld", (long long)n);
  return pv_throw_range(env, msg);
}

static napi_value pv_number(napi_env env, double v) {
  napi_value out;
  return napi_create_double(env, v, &out) == napi_ok ? out : NULL;
}

static void pv_close_backup(pv_backup *b) {
  if (b->backup) {
    sqlite3_backup_finish(b->backup);
    b->backup = NULL;
  }
  if (b->dest) {
    sqlite3_close(b->dest);
    b->dest = NULL;
    b->file = NULL;
  }
}

static void pv_finalize_backup(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  pv_backup *b = data;
  /* Never finish a backup from the garbage collector: its source connection may already be gone.
   * TypeScript always finishes or aborts; if it did not, leaking is the safe choice. */
  if (b->backup) return;
  pv_close_backup(b);
  free(b);
}

static pv_backup *pv_get_backup(napi_env env, napi_value v) {
  bool ok = false;
  if (napi_check_object_type_tag(env, v, &pv_backup_tag, &ok) != napi_ok || !ok) {
    pv_throw(env, "ERR_INVALID_ARG_TYPE", "expected a pagevault backup handle");
    return NULL;
  }
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok) {
    pv_throw_pending(env);
    return NULL;
  }
  return data;
}

/* The arguments of a function on a backup (argc of them, the handle first) and its backup; NULL with an
 * exception pending when they cannot be read or argv[0] is not a handle. */
static pv_backup *pv_backup_call(napi_env env, napi_callback_info info, size_t argc, napi_value *argv) {
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    pv_throw_pending(env);
    return NULL;
  }
  return pv_get_backup(env, argv[0]);
}

/* pv_backup_call for a call that needs the destination still open (PAGEVAULT_CLOSED otherwise). */
static pv_backup *pv_open_backup_call(napi_env env, napi_callback_info info, size_t argc, napi_value *argv) {
  pv_backup *b = pv_backup_call(env, info, argc, argv);
  if (b && !b->file) {
    pv_throw(env, "PAGEVAULT_CLOSED", "the backup destination is closed");
    return NULL;
  }
  return b;
}

static int pv_exec(sqlite3 *db, const char *sql) { return sqlite3_exec(db, sql, NULL, NULL, NULL); }

/* start(token, pageSize, cacheKiB, maxStagedPages) -> handle. Opens the destination on the staging VFS,
 * staging at most maxStagedPages pages at once, and attaches a backup from the registered connection's
 * "main" database. */
static napi_value pv_start(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!sqlite3_api) return pv_throw(env, "PAGEVAULT_NOT_LOADED", "the pagevault extension has not been loaded into any connection");
  int64_t token, page_size64;
  int32_t page_size, cache_kib, max_staged;
  NAPI_OK(napi_get_value_int64(env, argv[0], &token));
  NAPI_OK(napi_get_value_int64(env, argv[1], &page_size64)); /* int64: int32 would wrap 2^32 + 4096 to 4096 */
  NAPI_OK(napi_get_value_int32(env, argv[2], &cache_kib));
  NAPI_OK(napi_get_value_int32(env, argv[3], &max_staged));
  page_size = page_size64 < 0 || page_size64 > 65536 ? 0 : (int32_t)page_size64;

  if (!pv_valid_page_size(page_size)) return pv_throw_page_size(env, page_size64);
  if (cache_kib < 1) return pv_throw_range(env, "cacheKiB must be at least 1");
  if (max_staged < 1) return pv_throw_range(env, "maxStagedPages must be at least 1");

  sqlite3 *src = NULL;
  pv_resolution found = pv_resolve(token, &src);
  if (found == PV_FOREIGN) return pv_throw(env, "PAGEVAULT_FOREIGN_CONNECTION", "the source connection belongs to another thread; only the thread that registered it can back it up");
  if (found != PV_RESOLVED) return pv_throw(env, "PAGEVAULT_UNKNOWN_CONNECTION", "the source connection is not registered (closed, or the extension was not loaded into it)");

  pv_backup *b = calloc(1, sizeof(*b));
  if (!b) return pv_throw(env, "PAGEVAULT_NOMEM", "out of memory");
  char name[64];
  static int64_t serial = 0;
  pthread_mutex_lock(&pv_mutex);
  int64_t n = ++serial;
  pthread_mutex_unlock(&pv_mutex);
  sqlite3_snprintf(sizeof(name), name, "pagevault-destination-%lld", (long long)n);

  char sql[128];
  sqlite3_snprintf(sizeof(sql), sql, "PRAGMA cache_size=-%d", cache_kib);
  int rc = sqlite3_open_v2(name, &b->dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, PV_VFS_NAME);
  if (rc == SQLITE_OK) rc = pv_exec(b->dest, "PRAGMA journal_mode=OFF");
  if (rc == SQLITE_OK) rc = pv_exec(b->dest, "PRAGMA locking_mode=EXCLUSIVE");
  if (rc == SQLITE_OK) rc = pv_exec(b->dest, "PRAGMA synchronous=OFF");
  if (rc == SQLITE_OK) rc = pv_exec(b->dest, sql);
  if (rc == SQLITE_OK) rc = sqlite3_file_control(b->dest, "main", SQLITE_FCNTL_FILE_POINTER, &b->file);
  if (rc == SQLITE_OK) {
    b->file->page_size = page_size;
    b->file->max_staged = max_staged;
    b->backup = sqlite3_backup_init(b->dest, "main", src, "main");
    if (!b->backup) rc = sqlite3_errcode(b->dest);
  }
  if (rc != SQLITE_OK) {
    char msg[512];
    sqlite3_snprintf(sizeof(msg), msg, "open backup destination: %s", b->dest ? sqlite3_errmsg(b->dest) : sqlite3_errstr(rc));
    pv_close_backup(b);
    free(b);
    return pv_throw(env, "PAGEVAULT_START", msg);
  }

  b->next = 1;
  napi_value handle;
  if (napi_create_external(env, b, pv_finalize_backup, NULL, &handle) != napi_ok) {
    pv_close_backup(b);
    free(b);
    return pv_throw_pending(env);
  }
  NAPI_OK(napi_type_tag_object(env, handle, &pv_backup_tag));
  return handle;
}

/* step(handle, pages, out: Float64Array(9)) -> rc
 * out = [rc, remaining, pageCount, staged, badWrite, restarts, overCap, peakStaged, rereads]; rc is SQLite's
 * own result code; overCap is 1 once a write was refused because maxStagedPages were staged (then rc is, or
 * the next step's will be, SQLITE_FULL); peakStaged is the most pages staged at once so far; rereads counts
 * the destination's reads of pages it wrote before (see pv_read).
 * A restart (another connection's commit, or a ROLLBACK on the source connection in WAL mode) is seen as
 * the copy's position falling short of where this step should have taken it; restarts counts them. */
static napi_value pv_step(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  pv_backup *b = pv_backup_call(env, info, 3, argv);
  if (!b) return NULL;
  if (!b->backup) return pv_throw(env, "PAGEVAULT_FINISHED", "the backup is already finished");
  int32_t pages;
  NAPI_OK(napi_get_value_int32(env, argv[1], &pages));
  napi_typedarray_type type;
  size_t len;
  void *raw;
  NAPI_OK(napi_get_typedarray_info(env, argv[2], &type, &len, &raw, NULL, NULL));
  if (type != napi_float64_array || len < 9) return pv_throw(env, "ERR_INVALID_ARG_TYPE", "expected a Float64Array of length 9");
  if (pages < 1) return pv_throw_range(env, "pages must be at least 1");
  double *out = raw;
  int rc = sqlite3_backup_step(b->backup, pages);
  int remaining = sqlite3_backup_remaining(b->backup);
  int page_count = sqlite3_backup_pagecount(b->backup);
  if (rc == SQLITE_OK || rc == SQLITE_DONE) {
    int before = b->next;
    int expected = before + pages < page_count + 1 ? before + pages : page_count + 1;
    b->next = page_count - remaining + 1;
    if (before > 1 && b->next < expected) b->restarts++;
  }
  out[0] = rc;
  out[1] = remaining;
  out[2] = page_count;
  out[3] = b->file->count - b->file->head;
  out[4] = b->file->bad_write;
  out[5] = b->restarts;
  out[6] = b->file->over_cap;
  out[7] = b->file->peak;
  out[8] = b->file->rereads;
  return pv_number(env, rc);
}

/* drain(handle, pageNumbers: Uint32Array, data: Buffer) -> pages copied, oldest first.
 * Copies as many staged pages as both arrays hold; the rest stay staged for the next call. */
static napi_value pv_drain(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  pv_backup *b = pv_open_backup_call(env, info, 3, argv);
  if (!b) return NULL;
  napi_typedarray_type type;
  size_t npg, ndata;
  void *pg, *data;
  NAPI_OK(napi_get_typedarray_info(env, argv[1], &type, &npg, &pg, NULL, NULL));
  if (type != napi_uint32_array) return pv_throw(env, "ERR_INVALID_ARG_TYPE", "expected a Uint32Array for page numbers");
  NAPI_OK(napi_get_buffer_info(env, argv[2], &data, &ndata));
  pv_file *f = b->file;
  if (!pv_valid_page_size(f->page_size)) return pv_throw_page_size(env, f->page_size);
  size_t ps = (size_t)f->page_size;
  size_t fit = ndata / ps;
  if (npg < fit) fit = npg;
  size_t avail = (size_t)(f->count - f->head);
  size_t n = avail < fit ? avail : fit;
  if (n > 0) {
    memcpy(pg, f->pgnos + f->head, n * sizeof(uint32_t));
    memcpy(data, f->data + (size_t)f->head * ps, n * ps);
    f->head += (int)n;
  }
  if (f->head == f->count) f->head = f->count = 0;
  return pv_number(env, (double)n);
}

/* finish(handle) -> rc of sqlite3_backup_finish (0 when already finished). The destination stays open
 * so that staged pages can still be drained; close() releases it. */
static napi_value pv_finish(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  pv_backup *b = pv_backup_call(env, info, 1, argv);
  if (!b) return NULL;
  int rc = SQLITE_OK;
  if (b->backup) {
    rc = sqlite3_backup_finish(b->backup);
    b->backup = NULL;
  }
  return pv_number(env, rc);
}

/* setRereadFill(handle, byte): what reads of pages the destination wrote before answer from now on (0 by
 * default). For tests: with another byte, a copy that still equals its source never used those answers. */
static napi_value pv_set_reread_fill(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  pv_backup *b = pv_open_backup_call(env, info, 2, argv);
  if (!b) return NULL;
  int32_t fill;
  NAPI_OK(napi_get_value_int32(env, argv[1], &fill));
  if (fill < 0 || fill > 255) return pv_throw_range(env, "the fill must be a byte, 0 to 255");
  b->file->reread_fill = (unsigned char)fill;
  return NULL;
}

/* close(handle): finishes the backup if still attached, closes the destination, drops staged pages. */
static napi_value pv_close_fn(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  pv_backup *b = pv_backup_call(env, info, 1, argv);
  if (!b) return NULL;
  pv_close_backup(b);
  return NULL;
}

/* errmsg(handle, rc) -> "<SQLite's text for rc>: <destination's last message>" */
static napi_value pv_errmsg(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  pv_backup *b = pv_backup_call(env, info, 2, argv);
  if (!b) return NULL;
  int32_t rc;
  NAPI_OK(napi_get_value_int32(env, argv[1], &rc));
  char msg[512];
  const char *detail = b->dest ? sqlite3_errmsg(b->dest) : "";
  const char *text = sqlite3_api ? sqlite3_errstr(rc) : "unknown error";
  if (detail[0] && strcmp(detail, text) != 0 && strcmp(detail, "not an error") != 0) {
    sqlite3_snprintf(sizeof(msg), msg, "%s: %s", text, detail);
  } else {
    sqlite3_snprintf(sizeof(msg), msg, "%s", text);
  }
  napi_value out;
  NAPI_OK(napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &out));
  return out;
}

/* ---------------------------------------------------------------- lock probe */

/*
 * The arguments of lockHolder and lockExclusive (`fn`), (path, start, length): the path into `path`, the
 * range into a write-lock request. False (with an exception pending) for bad arguments.
 */
static bool pv_lock_args(napi_env env, napi_callback_info info, const char *fn, char *path, size_t size, struct flock *fl) {
  size_t argc = 3;
  napi_value argv[3];
  size_t len = 0;
  int64_t start = -1, length = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_string_utf8(env, argv[0], path, size, &len) != napi_ok ||
      napi_get_value_int64(env, argv[1], &start) != napi_ok || napi_get_value_int64(env, argv[2], &length) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) pv_throw(env, "PAGEVAULT_NATIVE", fn);
    return false;
  }
  char message[64];
  const char *bad = len == 0 || len >= size - 1 ? "bad path length" : start < 0 || length < 1 ? "bad range" : NULL;
  if (bad) {
    snprintf(message, sizeof(message), "%s: %s", fn, bad);
    pv_throw(env, "PAGEVAULT_NATIVE", message);
    return false;
  }
  memset(fl, 0, sizeof(*fl));
  fl->l_type = F_WRLCK;
  fl->l_whence = SEEK_SET;
  fl->l_start = (off_t)start;
  fl->l_len = (off_t)length;
  return true;
}

/*
 * lockHolder(path, start, length): 0 when no other process holds a POSIX lock that would conflict with a
 * write lock on [start, start + length) of the file (or the file does not exist), the holder's pid, or -1
 * when a holder exists whose pid this process cannot see (another pid namespace, an OFD lock). Throws
 * with the errno name as code when the file cannot be opened or probed. F_GETLK takes no lock. Caveat of
 * POSIX locks: closing the probe's descriptor drops every POSIX lock this process itself holds on the file,
 * so the caller must not probe a file its own process has open through SQLite.
 */
static napi_value pv_lock_holder(napi_env env, napi_callback_info info) {
  char path[4096];
  struct flock fl;
  if (!pv_lock_args(env, info, "lockHolder", path, sizeof(path), &fl)) return NULL;
  int fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return pv_number(env, 0);
    return pv_throw(env, errno == EACCES ? "EACCES" : "EIO", "lockHolder: cannot open the file");
  }
  int rc = fcntl(fd, F_GETLK, &fl);
  int err = errno;
  close(fd);
  if (rc < 0) return pv_throw(env, err == ENOLCK ? "ENOLCK" : "EIO", "lockHolder: fcntl(F_GETLK) failed");
  if (fl.l_type == F_UNLCK) return pv_number(env, 0);
  return pv_number(env, fl.l_pid > 0 ? (double)fl.l_pid : -1);
}

/* The errno names the TypeScript side branches on. */
static const char *pv_errno_code(int err) {
  switch (err) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EROFS: return "EROFS";
    case ENOENT: return "ENOENT";
    case ENOLCK: return "ENOLCK";
    default: return "EIO";
  }
}

/*
 * lockExclusive(path, start, length): opens the file for writing and takes a POSIX write lock on
 * [start, start + length) without waiting, the way SQLite's unix VFS takes EXCLUSIVE. Returns the
 * descriptor that holds the lock, or -1 when another process holds a conflicting lock. Throws with the
 * errno name as code (EACCES, EPERM, EROFS, ENOENT, ENOLCK, EIO) when the file cannot be opened for
 * writing or locked. Nothing is written. The lock lasts until releaseLock(fd); the lockHolder caveat
 * applies: closing that descriptor drops every POSIX lock this process holds on the file.
 */
static napi_value pv_lock_exclusive(napi_env env, napi_callback_info info) {
  char path[4096];
  struct flock fl;
  if (!pv_lock_args(env, info, "lockExclusive", path, sizeof(path), &fl)) return NULL;
  int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return pv_throw(env, pv_errno_code(errno), "lockExclusive: cannot open the file for writing");
  if (fcntl(fd, F_SETLK, &fl) == 0) return pv_number(env, fd);
  int err = errno;
  close(fd);
  if (err == EACCES || err == EAGAIN) return pv_number(env, -1);
  return pv_throw(env, pv_errno_code(err), "lockExclusive: fcntl(F_SETLK) failed");
}

/* releaseLock(fd): closes a descriptor from lockExclusive, releasing its lock. */
static napi_value pv_release_lock(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    return pv_throw(env, "PAGEVAULT_NATIVE", "releaseLock(fd)");
  }
  close(fd);
  return NULL;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"start", pv_start}, {"step", pv_step},   {"drain", pv_drain},
      {"finish", pv_finish}, {"close", pv_close_fn}, {"errmsg", pv_errmsg}, {"setRereadFill", pv_set_reread_fill},
      {"lockHolder", pv_lock_holder}, {"lockExclusive", pv_lock_exclusive}, {"releaseLock", pv_release_lock},
  };
  for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f) != napi_ok) return NULL;
    if (napi_set_named_property(env, exports, fns[i].name, f) != napi_ok) return NULL;
  }
  return exports;
}
