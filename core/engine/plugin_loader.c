/*
 * plugin_loader.c -- dlopen-based loading for plugin_loader.h. The order of
 * checks matters: the ABI version and struct size are read before any other
 * member, and a member after `transform` only when the descriptor's size
 * holds it (the versioning rule of plugin.h).
 */
#include "engine/plugin_loader.h"
#include "base/plugin_path.h"
#include "base/safe_path.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/host.h"
#include "base/roff.h"
#include "engine/lua_plugin.h"
#include "engine/options.h"

#define MORPH_STR_(x) #x
#define MORPH_STR(x) MORPH_STR_(x)

/* A sealed in-memory copy of the plugin file for dlopen, so that what runs
 * is what was checked and loaded: the dynamic loader maps a file's pages
 * shared with the file, and a plugin rewritten in place (`cp` over it)
 * changed, or truncated, the code under a running morphd -- SIGSEGV at the
 * next message. A replaced file is loaded anew on reload, as before; one
 * rewritten in place now keeps its old code until then, as documented.
 * `sb` is the file as checked: the copy is refused when the file opened is
 * another. Returns the copy's descriptor, or -1 with the reason. */
static int private_copy(const char *real, const struct stat *sb, char *why,
                        size_t why_size)
{
    int src = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat now;
    if (src < 0 || fstat(src, &now) != 0) {
        snprintf(why, why_size, "%s", strerror(errno));
        if (src >= 0)
            close(src);
        return -1;
    }
    if (now.st_dev != sb->st_dev || now.st_ino != sb->st_ino) {
        snprintf(why, why_size, "the file was replaced while it was loaded; "
                 "try again");
        close(src);
        return -1;
    }
    /* named after the file, which /proc/PID/maps then shows (its last 200
     * bytes: memfd names stop at 249) */
    size_t real_len = strlen(real);
    const char *label = real_len > 200 ? real + real_len - 200 : real;
    unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
#ifdef MFD_EXEC
    int fd = memfd_create(label, flags | MFD_EXEC);
    if (fd < 0 && errno == EINVAL) /* a kernel before 6.3 */
#else
    int fd = -1;
#endif
        fd = memfd_create(label, flags);
    if (fd < 0) {
        snprintf(why, why_size, "cannot make a private copy: memfd_create: %s",
                 strerror(errno));
        close(src);
        return -1;
    }
    char buf[64 * 1024];
    ssize_t n;
    off_t total = 0;
    while ((n = read(src, buf, sizeof buf)) > 0) {
        for (ssize_t w = 0; w < n;) {
            ssize_t k = write(fd, buf + w, (size_t)(n - w));
            if (k < 0) {
                n = -1;
                break;
            }
            w += k;
        }
        if (n < 0)
            break;
        total += n;
    }
    int e = errno;
    close(src);
    if (n < 0 || total != now.st_size) {
        snprintf(why, why_size, "cannot make a private copy: %s",
                 n < 0 ? strerror(e) : "the file changed size while it was read");
        close(fd);
        return -1;
    }
    /* nobody, not even a plugin, changes the copy from now on */
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
                               F_SEAL_SEAL);
    return fd;
}

static bool copy_files = true;

void morphd_plugin_copy_files(bool on) { copy_files = on; }

/* The part of the descriptor every plugin has (ABI 1 and later), the
 * whole ABI 1 descriptor (with its reserved room), and the smallest ABI 2
 * one (up to abi_min). */
#define DESC_MIN_SIZE (offsetof(morph_plugin_t, transform) + sizeof(void *))
#define DESC_ABI1_SIZE (DESC_MIN_SIZE + 8 * sizeof(void *))
#define DESC_ABI2_MIN_SIZE (offsetof(morph_plugin_t, abi_min) + sizeof(uint32_t))

/* Whether the plugin's descriptor holds `member`. */
#define DESC_HAS(d, member) MORPH_HAS(d, member)

uint32_t morphd_plugin_known_flags(uint32_t abi)
{
    return abi <= 1 ? MORPH_PLUGIN_FLAGS_ABI1 : MORPH_PLUGIN_FLAGS_ABI2;
}

void morphd_plugin_flag_names(uint32_t flags, char *buf, size_t size)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {MORPH_PLUGIN_CHUNK_SAFE, "chunk-safe"},
        {MORPH_PLUGIN_BLOCKING, "blocking"},
        {MORPH_PLUGIN_LINE_END, "line-end"},
    };
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (flags & names[i].bit) {
            n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%s",
                                  n ? ", " : "", names[i].name);
            flags &= ~names[i].bit;
        }
    if (flags)
        n += (size_t)snprintf(buf + n, n < size ? size - n : 0,
                              "%sunknown 0x%x", n ? ", " : "", flags);
    if (n == 0)
        snprintf(buf, size, "none");
}

int morphd_plugin_load(const char *dir, const char *name, morphd_plugin_t *p,
                       char *err, size_t err_size)
{
    return morphd_plugin_load_variant(dir, name, 0, p, NULL, err, err_size);
}

static int load_impl(const char *dir, const char *name, unsigned variant,
                     bool run_hooks, morphd_plugin_t *p, bool *in_script,
                     char *err, size_t err_size);

int morphd_plugin_inspect(const char *path, morphd_plugin_t *p, char *err,
                          size_t err_size)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t stem = morphd_plugin_file_stem(base);
    if (stem == 0) {
        memset(p, 0, sizeof *p);
        snprintf(err, err_size, "%s: a plugin file is named NAME.so or "
                 "NAME.lua", path);
        return -1;
    }
    char *dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    char *name = strndup(base, stem);
    int rc = -1;
    if (dir == NULL || name == NULL) {
        memset(p, 0, sizeof *p);
        snprintf(err, err_size, "out of memory");
    } else {
        rc = load_impl(dir[0] ? dir : "/", name, 0, false, p, NULL, err,
                       err_size);
    }
    free(dir);
    free(name);
    return rc;
}

int morphd_plugin_file_changed(const morphd_plugin_t *p)
{
    struct stat now;
    if (stat(p->path, &now) != 0)
        return 1;
    return now.st_dev != p->file.st_dev || now.st_ino != p->file.st_ino ||
           now.st_size != p->file.st_size ||
           now.st_mtim.tv_sec != p->file.st_mtim.tv_sec ||
           now.st_mtim.tv_nsec != p->file.st_mtim.tv_nsec;
}

/* Checks the descriptor's versions, size and flags (the versioning rule
 * of plugin.h), and reads the members after `transform` that its size
 * holds. Returns 0, or -1 with the reason in why. */
static int check_descriptor(const morph_plugin_t *d, morphd_plugin_t *p,
                            char *why, size_t why_size)
{
    if (d->abi_version == 0) {
        snprintf(why, why_size, "its descriptor has ABI version 0; was it "
                 "built with MORPH_PLUGIN_HEADER_INIT?");
        return -1;
    }
    if (d->struct_size < DESC_MIN_SIZE) {
        snprintf(why, why_size, "descriptor is %u bytes, smaller than the %zu "
                 "every morph plugin ABI has; was it built with "
                 "MORPH_PLUGIN_HEADER_INIT?", d->struct_size, DESC_MIN_SIZE);
        return -1;
    }
    p->abi = d->abi_version;
    if (d->abi_version == 1) {
        /* ABI 1: reserved room after `transform`, which had to stay zero */
        size_t end = d->struct_size < DESC_ABI1_SIZE ? d->struct_size
                                                     : DESC_ABI1_SIZE;
        const unsigned char *raw = (const unsigned char *)d;
        for (size_t i = DESC_MIN_SIZE; i < end; i++)
            if (raw[i] != 0) {
                snprintf(why, why_size, "an ABI 1 descriptor whose reserved[] "
                         "room is not zero (byte %zu); ABI 1 says keep it "
                         "zero: rebuild it against this morph's "
                         "<morph/plugin.h>", i);
                return -1;
            }
        p->abi_min = 1;
    } else {
        if (d->struct_size < DESC_ABI2_MIN_SIZE) {
            snprintf(why, why_size, "descriptor is %u bytes, smaller than the "
                     "%zu of ABI version 2 it claims; was it built with "
                     "MORPH_PLUGIN_HEADER_INIT?", d->struct_size,
                     DESC_ABI2_MIN_SIZE);
            return -1;
        }
        p->abi_min = d->abi_min ? d->abi_min : MORPH_PLUGIN_ABI_MIN_DEFAULT;
        if (p->abi_min > MORPH_PLUGIN_ABI_VERSION) {
            snprintf(why, why_size, "it needs a host with plugin ABI %u or "
                     "later (abi_min), and this morphd has plugin ABI %d; "
                     "upgrade morph, or rebuild the plugin for ABI %d",
                     p->abi_min, MORPH_PLUGIN_ABI_VERSION,
                     MORPH_PLUGIN_ABI_VERSION);
            return -1;
        }
        if (p->abi_min > d->abi_version) {
            snprintf(why, why_size, "it needs plugin ABI %u (abi_min), newer "
                     "than the ABI %u it was built for", p->abi_min,
                     d->abi_version);
            return -1;
        }
    }
    uint32_t known = morphd_plugin_known_flags(
        d->abi_version < MORPH_PLUGIN_ABI_VERSION ? d->abi_version
                                                  : MORPH_PLUGIN_ABI_VERSION);
    if (d->flags & ~known) {
        char names[128];
        morphd_plugin_flag_names(d->flags & ~known, names, sizeof names);
        snprintf(why, why_size, "it sets flag bits 0x%x (%s) that %s; "
                 "refusing rather than ignoring them",
                 d->flags & ~known, names,
                 d->abi_version > MORPH_PLUGIN_ABI_VERSION
                     ? "this morphd does not know (they are newer than its "
                       "plugin ABI " MORPH_STR(MORPH_PLUGIN_ABI_VERSION) ")"
                     : "its ABI version does not have");
        return -1;
    }
    if (d->abi_version >= 2 && DESC_HAS(d, reserved)) {
        for (size_t i = 0; i < sizeof d->reserved / sizeof *d->reserved; i++)
            if (d->reserved[i] != NULL) {
                snprintf(why, why_size, "reserved[%zu] is set; it must stay "
                         "zero (it is there only so that ABI 1 sources "
                         "compile)", i);
                return -1;
            }
    }
    if (d->abi_version >= 2) {
        if (DESC_HAS(d, options) && d->options != NULL)
            p->declares_options = true;
        if (DESC_HAS(d, cancel))
            p->cancel = d->cancel;
        if (DESC_HAS(d, unload))
            p->unload = d->unload;
    }
    if (d->abi_version >= 3 && DESC_HAS(d, conn_open2))
        p->conn_open2 = d->conn_open2;
    if (d->abi_version >= 4 && DESC_HAS(d, codec) && d->codec != NULL) {
        const morph_codec_t *c = d->codec;
        if (c->struct_size < offsetof(morph_codec_t, encode) + sizeof c->encode ||
            c->decode == NULL || c->encode == NULL) {
            snprintf(why, why_size, "its codec has no decode() or encode(), "
                     "or is %u bytes, smaller than any morph_codec_t",
                     c->struct_size);
            return -1;
        }
        p->codec = c;
    }
    return 0;
}

int morphd_plugin_load_variant(const char *dir, const char *name,
                               unsigned variant, morphd_plugin_t *p,
                               bool *in_script, char *err, size_t err_size)
{
    return load_impl(dir, name, variant, true, p, in_script, err, err_size);
}

/* The file `path` names, before anything of it runs: within the versions
 * kept, a regular file, and no folder on the way to it (or to the file a
 * symbolic link leads to, *real) writable by others. */
static int check_file(const char *name, const char *path, unsigned variant,
                      bool script, struct stat *sb, char **real, char *err,
                      size_t err_size)
{
    if (variant >= (script ? MORPHD_SCRIPT_VERSIONS_MAX
                           : MORPHD_PLUGIN_VERSIONS_MAX)) {
        snprintf(err, err_size, "plugin '%s': %s: its file was replaced and "
                 "loaded %u times since morphd started, the most it keeps "
                 "(no plugin is ever unloaded: each version stays in memory); "
                 "restart morphd to load it again", name, path, variant);
        return -1;
    }
    if (stat(path, sb) != 0) {
        snprintf(err, err_size, "plugin '%s': %s: %s%s", name, path,
                 strerror(errno),
                 errno == ENOENT ? " (is plugin_dir right? is it built?)" : "");
        return -1;
    }
    if (!S_ISREG(sb->st_mode)) {
        snprintf(err, err_size, "plugin '%s': %s: not a regular file", name,
                 path);
        return -1;
    }
    /* The file's folders are checked as named (who may change the name),
     * and so is every folder of the file it really is: a symbolic link
     * into a folder others can write would otherwise pass. What dlopen
     * opens is that real file, whose whole path has been checked. */
    char why[512];
    *real = realpath(path, NULL);
    if (*real == NULL) {
        snprintf(err, err_size, "plugin '%s': %s: %s", name, path,
                 strerror(errno));
        return -1;
    }
    bool linked = strcmp(*real, path) != 0;
    if (morphd_path_check_writers(path, geteuid(), 2, why, sizeof why) != 0 ||
        (linked &&
         morphd_path_check_writers(*real, geteuid(), 2, why, sizeof why) != 0)) {
        snprintf(err, err_size, "plugin '%s': %s: refusing to load: %s%s%s%s",
                 name, path, why, linked ? " (it is " : "", linked ? *real : "",
                 linked ? ")" : "");
        return -1;
    }
    return 0;
}

/* dlopens the checked file `real` into p->handle: a sealed private copy of
 * it when copy_files is on (loader.h), so that the file may change under
 * morphd without changing the code that runs. */
static int open_shared_object(const char *name, const char *path,
                              const char *real, const struct stat *sb,
                              morphd_plugin_t *p, char *err, size_t err_size)
{
    char why[512];
    /* RTLD_NODELETE: a plugin's code stays mapped after dlclose. Libraries
     * it pulls in (ICU) keep process-wide caches and atexit handlers that
     * would point into unmapped memory if the plugin went away. */
    int copy = -1; /* without a copy: the file itself */
    if (copy_files && (copy = private_copy(real, sb, why, sizeof why)) < 0) {
        snprintf(err, err_size, "plugin '%s': %s: cannot load: %s", name, path,
                 why);
        return -1;
    }
    /* The dynamic loader takes a name it has loaded before for the object
     * it loaded then, and descriptor numbers come back once closed: each
     * load gets a name of its own, its count spelt in 32 steps that lead
     * to the same folder ("./" for a 0, "../fd/" for a 1). */
    char fd_path[16 + 32 * 6 + 16] = "";
    if (copy >= 0) {
        static uint32_t loads;
        uint32_t k = __atomic_fetch_add(&loads, 1, __ATOMIC_RELAXED);
        size_t n = (size_t)snprintf(fd_path, sizeof fd_path, "/proc/self/fd/");
        for (int bit = 31; bit >= 0; bit--)
            n += (size_t)snprintf(fd_path + n, sizeof fd_path - n, "%s",
                                  (k >> bit) & 1 ? "../fd/" : "./");
        snprintf(fd_path + n, sizeof fd_path - n, "%d", copy);
    }
    dlerror();
    /* without a copy, the file itself (dlopen shares one name's object) */
    p->handle = dlopen(copy >= 0 ? fd_path : real,
                       RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (copy >= 0)
        close(copy); /* the mapping keeps what it needs */
    if (p->handle == NULL) {
        const char *dl_why = dlerror();
        snprintf(err, err_size, "plugin '%s': %s: cannot load: %s", name, path,
                 dl_why ? dl_why : "unknown dlopen error");
        /* dlerror names the copy; the file is the one the reader knows */
        char *at = fd_path[0] ? strstr(err, fd_path) : NULL;
        if (at != NULL)
            memmove(at, at + strlen(fd_path), strlen(at + strlen(fd_path)) + 1);
        return -1;
    }
    return 0;
}

/* The loaded object's descriptor, checked: exported, of an ABI this morphd
 * serves, with a transform, named as its file, with options that parse. */
static int check_descriptor_of(const char *name, const char *path,
                               morphd_plugin_t *p, const morph_plugin_t **out,
                               char *err, size_t err_size)
{
    char why[512];
    dlerror();
    const morph_plugin_t *desc = dlsym(p->handle, MORPH_PLUGIN_SYMBOL);
    if (desc == NULL) {
        snprintf(err, err_size,
                 "plugin '%s': %s: does not export the symbol '%s' (declare "
                 "`MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin`; in "
                 "C++ it needs C linkage: `extern \"C\" MORPH_PLUGIN_EXPORT "
                 "const morph_plugin_t morph_plugin`, or use "
                 "MORPH_CXX_PLUGIN from <morph/plugin.hpp>)",
                 name, path, MORPH_PLUGIN_SYMBOL);
        return -1;
    }
    if (check_descriptor(desc, p, why, sizeof why) != 0) {
        snprintf(err, err_size, "plugin '%s': %s: built for plugin ABI %u: %s",
                 name, path, desc->abi_version, why);
        return -1;
    }
    if (desc->transform == NULL && p->codec == NULL) {
        snprintf(err, err_size, "plugin '%s': %s: has no transform function "
                 "(and is no codec)", name, path);
        return -1;
    }
    if (desc->name == NULL || strcmp(desc->name, name) != 0) {
        snprintf(err, err_size,
                 "plugin '%s': %s: the descriptor's name is '%s'; the file "
                 "name and the plugin name must match",
                 name, path, desc->name ? desc->name : "(null)");
        return -1;
    }
    if (p->declares_options &&
        morphd_options_collect(desc->options, &p->options, &p->n_options, why,
                               sizeof why) != 0) {
        snprintf(err, err_size, "plugin '%s': %s: %s", name, path, why);
        return -1;
    }
    *out = desc;
    return 0;
}

/* The plugin's load() hook, once per process, now that every check has
 * passed (run_hooks: not for a look such as `morph plugin info`). */
static int run_load_hook(morphd_plugin_t *p, bool run_hooks, char *err,
                         size_t err_size)
{
    const morph_plugin_t *desc = p->desc;
    int (*load)(const morph_host_t *, char *, size_t) =
        desc->abi_version >= 2 && DESC_HAS(desc, load) ? desc->load : NULL;
    if (load == NULL || !run_hooks)
        return 0;
    morphd_host_process_init(&p->load_host, p->name);
    char reason[256] = "";
    if (load(&p->load_host, reason, sizeof reason) != MORPH_OK) {
        snprintf(err, err_size, "plugin '%s': %s: load() failed: %s", p->name,
                 p->path, reason[0] ? reason : "without a reason");
        return -1;
    }
    p->loaded = true;
    return 0;
}

/* Finds, checks and loads plugin `name` in its steps: the file, then a
 * Lua script's bridge or the shared object, its descriptor and its load()
 * hook. On failure p is left empty. */
static int load_impl(const char *dirs, const char *name, unsigned variant,
                     bool run_hooks, morphd_plugin_t *p, bool *in_script,
                     char *err, size_t err_size)
{
    memset(p, 0, sizeof *p);
    if (in_script != NULL)
        *in_script = false;
    char *path = NULL;
    char *real = NULL; /* the file the path leads to (symbolic links resolved) */
    if (morphd_plugin_path_find(dirs, name, &path, err, err_size) != 0)
        return -1;
    bool script = morphd_script_path(path);
    struct stat sb;
    if (check_file(name, path, variant, script, &sb, &real, err, err_size) != 0)
        goto fail;

    if (script) { /* NAME.lua: no dlopen; the bridge makes a descriptor */
        if (morphd_script_load(real, path, name, p, err, err_size) != 0) {
            /* the message starts with the script's FILE:LINE */
            free(real);
            free(path);
            memset(p, 0, sizeof *p);
            if (in_script != NULL)
                *in_script = true;
            return -1;
        }
    } else if (open_shared_object(name, path, real, &sb, p, err, err_size) != 0 ||
               check_descriptor_of(name, path, p, &p->desc, err, err_size) != 0) {
        goto fail;
    }
    p->name = strdup(name);
    if (p->name == NULL) {
        snprintf(err, err_size, "plugin '%s': out of memory", name);
        goto fail;
    }
    p->path = path;
    p->file = sb;
    if (run_load_hook(p, run_hooks, err, err_size) != 0) { /* none for a script */
        free(p->name);
        goto fail;
    }
    free(real);
    return 0;

fail:
    if (p->handle != NULL)
        dlclose(p->handle);
    morphd_script_free(p->script);
    free(p->options);
    free(real);
    free(path);
    memset(p, 0, sizeof *p);
    return -1;
}

void morphd_plugin_print_options(FILE *out, const morphd_plugin_t *p,
                                 int format)
{
    bool markdown = format == MORPHD_REF_MARKDOWN;
    for (size_t i = 0; i < p->n_options; i++) {
        const morph_option_decl_t *d = p->options[i];
        char range[160] = "";
        switch (d->type) {
        case MORPH_OPT_ENUM: { /* "a|b" shown as "a, b" (a Markdown cell) */
            size_t n = 0;
            for (const char *v = d->values; *v && n + 3 < sizeof range; v++) {
                if (*v == '|') {
                    range[n++] = ',';
                    range[n++] = ' ';
                } else {
                    range[n++] = *v;
                }
            }
            range[n] = '\0';
            break;
        }
        case MORPH_OPT_BOOL:
            snprintf(range, sizeof range, "yes, no");
            break;
        case MORPH_OPT_STRING:
            snprintf(range, sizeof range, "text");
            break;
        default:
            if (d->min != 0 || d->max != 0)
                snprintf(range, sizeof range, "%s %lld..%lld%s",
                         morphd_option_type_name(d->type), (long long)d->min,
                         (long long)d->max,
                         d->type == MORPH_OPT_SIZE ? " bytes"
                         : d->type == MORPH_OPT_DURATION ? " ms" : "");
            else
                snprintf(range, sizeof range, "%s",
                         morphd_option_type_name(d->type));
        }
        if (format == MORPHD_REF_MAN) {
            fprintf(out, ".TP\n.B %s.%s\nPlugin %s: ", p->name, d->name, p->name);
            morphd_roff_puts(out, d->help ? d->help : "");
            fputs(".\nDefault: ", out);
            morphd_roff_puts(out, d->def ? d->def : "none");
            fputs("; values: ", out);
            morphd_roff_puts(out, range);
            fputs(".\n", out);
        } else if (markdown) {
            fprintf(out, "| `[service NAME]` | `%s.%s` | %s%s%s | %s | "
                    "`%s.%s = %s` | plugin %s: ", p->name, d->name,
                    d->def ? "`" : "", d->def ? d->def : "none",
                    d->def ? "`" : "", range, p->name, d->name,
                    d->def ? d->def : "...", p->name);
            for (const char *h = d->help ? d->help : ""; *h; h++)
                fputs(*h == '|' ? "\\|" : (char[]){*h, 0}, out);
            fputs(" |\n", out);
        } else {
            char key[96];
            snprintf(key, sizeof key, "%s.%s", p->name, d->name);
            fprintf(out, "  %-26s default: %s; values: %s\n  %-26s %s\n", key,
                    d->def ? d->def : "(none)", range, "",
                    d->help ? d->help : "");
        }
    }
}

void morphd_plugin_unload(morphd_plugin_t *p)
{
    if (p->loaded && p->unload != NULL)
        p->unload();
    if (p->handle != NULL)
        dlclose(p->handle);
    morphd_script_free(p->script);
    free(p->options);
    free(p->name);
    free(p->path);
    memset(p, 0, sizeof *p);
}
