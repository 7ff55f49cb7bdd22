/*
 * mhd_symbols.c -- libmicrohttpd's functions by dlopen (mhd_symbols.h).
 * MORPHD_MHD_SONAME is the library the build found, read from its ELF
 * header by CMake, so the version loaded is the one compiled against.
 */
#include "daemon/mhd_symbols.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#ifndef MORPHD_MHD_SONAME
#error "MORPHD_MHD_SONAME: the build sets it (CMakeLists.txt)"
#endif

static morphd_mhd_t table;
static const morphd_mhd_t *loaded;
static char why[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

#define SYMBOL(field, name)                                                   \
    do {                                                                      \
        void *p = dlsym(lib, name);                                           \
        if (p == NULL) {                                                      \
            snprintf(why, sizeof why, "%s has no %s", MORPHD_MHD_SONAME,      \
                     name);                                                   \
            return;                                                           \
        }                                                                     \
        /* POSIX: a function's address converts from dlsym's void * */       \
        *(void **)&table.field = p;                                           \
    } while (0)

static void load(void)
{
    /* RTLD_NODELETE: responses it made may outlive a stop, never unload */
    void *lib = dlopen(MORPHD_MHD_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (lib == NULL) {
        snprintf(why, sizeof why, "cannot load %s, which metrics_listen needs "
                 "(Debian: apt install libmicrohttpd12): %s", MORPHD_MHD_SONAME,
                 dlerror());
        return;
    }
    SYMBOL(start_daemon, "MHD_start_daemon");
    SYMBOL(stop_daemon, "MHD_stop_daemon");
    SYMBOL(get_daemon_info, "MHD_get_daemon_info");
    SYMBOL(run, "MHD_run");
    SYMBOL(get_timeout, "MHD_get_timeout");
    SYMBOL(create_response_from_buffer, "MHD_create_response_from_buffer");
    SYMBOL(add_response_header, "MHD_add_response_header");
    SYMBOL(queue_response, "MHD_queue_response");
    SYMBOL(destroy_response, "MHD_destroy_response");
    loaded = &table;
}

const morphd_mhd_t *morphd_mhd_load(char *err, size_t err_size)
{
    pthread_once(&once, load);
    if (loaded == NULL)
        snprintf(err, err_size, "%s", why);
    return loaded;
}
