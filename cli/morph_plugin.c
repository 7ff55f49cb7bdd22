/*
 * morph_plugin.c -- `morph plugin info NAME|FILE [-d DIR]`: what a plugin
 * is, which morphd loads it, and the options it takes. The plugin is
 * checked exactly as morphd checks it, but none of its code runs (not even
 * its load() hook).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>

#include "morph_cli.h"
#include "engine/options.h"
#include "base/paths.h"
#include "engine/plugin_loader.h"
#include "base/plugin_path.h"

static void plugin_usage(FILE *out)
{
    fprintf(out,
            "Usage: morph plugin info NAME|FILE [-d PLUGIN_DIRS]\n"
            "\n"
            "Prints a plugin's name, version, ABI, the morphd versions it loads\n"
            "on, its flags, its description and the options it declares, with\n"
            "their defaults. NAME is looked up as NAME.so or NAME.lua in\n"
            "PLUGIN_DIRS; a FILE (a path with '/', or ending in .so or .lua) is\n"
            "read as it is (a script is run once, in its sandbox). The plugin\n"
            "is checked as morphd would check it; none of a .so's code runs.\n"
            "\n"
            "  -d, --plugin-dir DIRS  where NAME is: folders separated by spaces,\n"
            "                         searched in order (default: %s)\n"
            "  -h, --help             show this help\n"
            "\n"
            "Exit status: 0 success; 64 bad usage; 78 morphd would refuse the\n"
            "plugin (the reason is printed).\n",
            morphd_default_plugin_dir());
}

static void print_info(const morphd_plugin_t *p)
{
    const morph_plugin_t *d = p->desc;
    char flags[128];
    morphd_plugin_flag_names(d->flags, flags, sizeof flags);
    printf("plugin       %s\n", p->name);
    printf("file         %s\n", p->path);
    printf("version      %s\n", d->version ? d->version : "(none)");
    if (p->script != NULL)
        printf("kind         a Lua %s script, run in morphd's sandbox\n",
               LUA_VERSION_MAJOR "." LUA_VERSION_MINOR);
    else
        printf("ABI          built for plugin ABI %u; loads on morph hosts "
               "with plugin ABI %u and later (this morph: %d)\n", p->abi,
               p->abi_min, MORPH_PLUGIN_ABI_VERSION);
    printf("flags        %s\n", flags);
    if (p->codec != NULL)
        printf("codec        yes: framing = %s cuts streams into messages and "
               "frames the replies%s\n", p->name,
               d->transform ? "; a transform too" : "");
    printf("description  %s\n", d->description ? d->description : "(none)");
    if (!p->declares_options) {
        printf("options      not declared: the plugin checks its own "
               "(see its documentation)\n");
        return;
    }
    if (p->n_options == 0) {
        printf("options      none\n");
        return;
    }
    printf("options\n");
    morphd_plugin_print_options(stdout, p, false);
}

int morph_plugin_main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"plugin-dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = morphd_default_plugin_dir();
    if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "--help") == 0) {
        plugin_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? MORPH_EXIT_USAGE : MORPH_EXIT_OK;
    }
    if (strcmp(argv[1], "info") != 0) {
        fprintf(stderr, "morph plugin: unknown command '%s'; try 'morph "
                "plugin info NAME'\n", argv[1]);
        return MORPH_EXIT_USAGE;
    }
    int opt;
    optind = 2;
    while ((opt = getopt_long(argc, argv, "d:h", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            dir = optarg;
            break;
        case 'h':
            plugin_usage(stdout);
            return MORPH_EXIT_OK;
        default:
            plugin_usage(stderr);
            return MORPH_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "morph plugin info: expected one NAME or FILE\n");
        return MORPH_EXIT_USAGE;
    }
    const char *what = argv[optind];
    char *path = NULL;
    bool is_file = strchr(what, '/') != NULL ||
                   morphd_plugin_file_stem(what) > 0;
    char err[1024];
    if (is_file) {
        path = strdup(what);
        if (path == NULL) {
            fprintf(stderr, "morph plugin info: out of memory\n");
            return MORPH_EXIT_FAILURE;
        }
    } else if (morphd_plugin_path_find(dir, what, &path, err, sizeof err) != 0) {
        fprintf(stderr, "morph plugin info: %s\n", err);
        return MORPH_EXIT_CONFIG;
    }
    morphd_plugin_t p;
    int rc = morphd_plugin_inspect(path, &p, err, sizeof err);
    free(path);
    if (rc != 0) {
        fprintf(stderr, "morph plugin info: %s\n", err);
        return MORPH_EXIT_CONFIG;
    }
    print_info(&p);
    morphd_plugin_unload(&p);
    return MORPH_EXIT_OK;
}
