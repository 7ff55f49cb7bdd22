/* The config parser on arbitrary text: never crashes or leaks, and every
 * error it reports names the file (and a line, when there is one). A
 * plugin_dir it accepts resolves to the same folders, in order, each
 * relative one under the config file's folder; every endpoint it accepts
 * reads back the same from its canonical text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "base/endpoint.h"
#include "base/log.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_endpoints(const morphd_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_services; i++)
        for (size_t j = 0; j < cfg->services[i].n_listen; j++) {
            const morphd_endpoint_t *ep = &cfg->services[i].listen[j];
            morphd_endpoint_t again;
            char err[256];
            if (morphd_endpoint_parse(ep->text, &again, err, sizeof err) != 0 ||
                again.transport != ep->transport ||
                strcmp(again.text, ep->text) != 0 ||
                memcmp(&again.addr, &ep->addr, sizeof again.addr) != 0) {
                fprintf(stderr, "fuzz: endpoint '%s' does not read back: %s\n",
                        ep->text, err);
                abort();
            }
        }
}

static void check_plugin_dir(const morphd_config_t *cfg)
{
    morphd_config_t view = *cfg;
    view.path = (char *)"/base/fuzz.ini";
    char *dirs = morphd_config_plugin_dir(&view, "/fallback");
    if (dirs == NULL)
        abort();
    const char *in = cfg->plugin_dir, *out = dirs;
    for (;;) {
        in += strspn(in, " \t");
        size_t len = strcspn(in, " \t");
        if (len == 0)
            break;
        if (in[0] != '/') {
            if (strncmp(out, "/base/", 6) != 0)
                goto bad;
            out += 6;
        }
        if (strncmp(out, in, len) != 0 || (out[len] != ' ' && out[len] != '\0'))
            goto bad;
        out += len;
        out += *out == ' ';
        in += len;
    }
    if (*out == '\0') {
        free(dirs);
        return;
    }
bad:
    fprintf(stderr, "fuzz: plugin_dir '%s' resolved to '%s'\n", cfg->plugin_dir,
            dirs);
    abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    morphd_errors_t errs = MORPHD_ERRORS_INIT;
    morphd_config_t cfg;
    int rc = morphd_config_load_string(text, "fuzz.ini", &cfg, &errs);
    if ((rc == 0) != (errs.n == 0)) {
        fprintf(stderr, "fuzz: rc %d with %zu errors\n", rc, errs.n);
        abort();
    }
    for (size_t i = 0; i < errs.n; i++)
        if (strncmp(errs.msgs[i], "fuzz.ini", 8) != 0) {
            fprintf(stderr, "fuzz: error without the file name: %s\n",
                    errs.msgs[i]);
            abort();
        }
    if (rc == 0 && cfg.plugin_dir != NULL)
        check_plugin_dir(&cfg);
    if (rc == 0)
        check_endpoints(&cfg);
    if (rc == 0) /* an override on a valid config is parsed the same way */
        morphd_config_override(&cfg, "morphd.log_level=debug", &errs);
    morphd_errors_free(&errs);
    morphd_config_free(&cfg);
    free(text);
    return 0;
}
