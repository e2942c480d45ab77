/* Plugins and graph files through the C ABI, in a C program linked with libdaskr.so: the
 * plugin (examples/plugins/example.c, compiled here without libdaskr) takes its daskr_*
 * functions from this process. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static char dir[256], lib[320];

/* Compiles the example plugin into a fresh temporary folder; returns 0 on failure. */
static int build_plugin(void) {
    /* __FILE__ is this file's absolute path (the test runner passes it so). */
    const char *me = __FILE__, *tail = strstr(me, "tests/c/plugin.c");
    if (!tail) {
        fprintf(stderr, "plugin.c: cannot find the source tree from %s\n", me);
        return 0;
    }
    int root_len = (int)(tail - me);
    snprintf(dir, sizeof dir, "/tmp/daskr-plugin-test-XXXXXX");
    if (!mkdtemp(dir)) return 0;
    snprintf(lib, sizeof lib, "%s/libexample.so", dir);
    const char *cc = getenv("CC") ? getenv("CC") : "cc";
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s -std=c11 -shared -fPIC -I%.*sinclude -I%.*sexamples %.*sexamples/plugins/example.c -o %s", cc,
             root_len, me, root_len, me, root_len, me, lib);
    return system(cmd) == 0;
}

static void test_open_and_declaration(void) {
    daskr_plugin_t *p = NULL;
    daskr_error_t *e = daskr_plugin_open("/nonexistent/libnothing.so", &p);
    CHECK(e != NULL && daskr_error_kind(e) == DASKR_ERROR_PLUGIN);
    CHECK(check_contains(daskr_error_message(e), "/nonexistent/libnothing.so"));
    daskr_error_free(e);
    CHECK(p == NULL);
    CHECK_ERR(daskr_plugin_open(NULL, &p), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_plugin_open(lib, NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);

    CHECK_OK(daskr_plugin_open(lib, &p));
    const daskr_plugin_info_t *info = daskr_plugin_get_info(p);
    CHECK(info != NULL);
    if (info) {
        CHECK(info->abi_version == DASKR_ABI_VERSION);
        CHECK_STR(info->name, "example");
        CHECK_STR(info->version, "1.0.0");
        CHECK(info->ntasks == 14);
        if (info->ntasks > 4) CHECK_STR(info->tasks[4].symbol, "inc");
        CHECK(info->tasks[0].doc && info->tasks[0].doc[0] != '\0');
    }
    CHECK(daskr_plugin_path(p) && daskr_plugin_path(p)[0] == '/');
    CHECK(daskr_plugin_get_info(NULL) == NULL && daskr_plugin_path(NULL) == NULL);

    daskr_func_t *f = NULL;
    e = daskr_plugin_func(p, "nope", &f);
    CHECK(e != NULL && daskr_error_kind(e) == DASKR_ERROR_PLUGIN);
    CHECK(check_contains(daskr_error_message(e), "nope") && check_contains(daskr_error_message(e), lib));
    daskr_error_free(e);
    e = daskr_plugin_func(p, "snprintf", &f); /* found through libc, but not declared */
    CHECK(e != NULL && check_contains(daskr_error_message(e), "not declared"));
    daskr_error_free(e);
    daskr_plugin_free(p);
    daskr_plugin_free(NULL);
}

static void test_tasks_outlive_the_handle(void) {
    daskr_plugin_t *p = NULL;
    CHECK_OK(daskr_plugin_open(lib, &p));
    daskr_func_t *inc = NULL, *add = NULL, *fail = NULL;
    CHECK_OK(daskr_plugin_func(p, "inc", &inc));
    CHECK_OK(daskr_plugin_func(p, "add", &add));
    CHECK_OK(daskr_plugin_func(p, "fail", &fail));
    daskr_plugin_free(p); /* the functions keep the library loaded */
    if (!inc || !add || !fail) return;

    daskr_graph_t *g = daskr_graph_new();
    CHECK_OK(daskr_graph_add_value(g, "x", daskr_value_int(1), NULL));
    daskr_comp_t *y_args[] = {daskr_comp_ref("x")};
    CHECK_OK(daskr_graph_add_task(g, "y", inc, y_args, 1, NULL, NULL, 0, NULL));
    daskr_comp_t *z_args[] = {daskr_comp_ref("y"), int_comp(10)};
    const char *z_kw[] = {"scale"};
    daskr_comp_t *z_kwv[] = {int_comp(2)};
    CHECK_OK(daskr_graph_add_task(g, "z", add, z_args, 2, z_kw, z_kwv, 1, NULL));
    daskr_comp_t *bad_args[] = {str_comp("boom")};
    CHECK_OK(daskr_graph_add_task(g, "bad", fail, bad_args, 1, NULL, NULL, 0, NULL));
    daskr_func_free(inc);
    daskr_func_free(add);
    daskr_func_free(fail);

    daskr_get_options_t o;
    daskr_get_options_init(&o, sizeof o);
    for (int s = 0; s < 2; s++) {
        o.scheduler = s ? DASKR_SCHEDULER_SYNC : DASKR_SCHEDULER_THREADS;
        daskr_value_t *out = NULL;
        CHECK_OK(daskr_graph_get_key(g, "z", &o, &out));
        int64_t v = 0;
        CHECK(daskr_value_get_int(out, &v) && v == 24);
        daskr_value_free(out);
        out = NULL;
        daskr_error_t *e = daskr_graph_get_key(g, "bad", &o, &out);
        CHECK(e && daskr_error_kind(e) == DASKR_ERROR_TASK_FAILED);
        CHECK(e && check_contains(daskr_error_message(e), "boom"));
        CHECK_STR(e ? daskr_error_key(e) : NULL, "bad");
        daskr_error_free(e);
    }

    /* A graph of plugin functions can be written as a graph file. */
    daskr_value_t *json = NULL;
    CHECK_OK(daskr_graph_to_json(g, NULL, NULL, &json));
    const char *text = NULL;
    CHECK(daskr_value_get_string(json, &text, NULL) && check_contains(text, "\"example:inc\""));
    daskr_value_free(json);
    daskr_graph_free(g);
}

static const char *FILE_TEXT =
    "{\"plugins\": {\"ex\": \"libexample.so\"},\n"
    " \"graph\": {\"x\": 1, \"y\": {\"fn\": \"ex:inc\", \"args\": [\"x\"]},\n"
    "           \"z\": {\"fn\": \"ex:add\", \"args\": [\"y\", 10], \"kwargs\": {\"scale\": 2}},\n"
    "           \"s\": \"not a key\", \"b\": {\"bytes\": \"aGk=\"}},\n"
    " \"keys\": [\"z\", [\"s\", \"b\"]]}\n";

static void check_file_result(daskr_graph_t *g, const daskr_value_t *keys) {
    daskr_value_t *out = NULL, *json = NULL;
    CHECK_OK(daskr_graph_get(g, keys, NULL, &out));
    CHECK_OK(daskr_value_to_json(out, &json));
    const char *text = NULL;
    CHECK(daskr_value_get_string(json, &text, NULL));
    CHECK_STR(text, "[24,[\"not a key\",{\"bytes\":\"aGk=\"}]]");
    daskr_value_free(json);
    daskr_value_free(out);
}

static void test_graph_files(void) {
    daskr_graph_t *g = NULL;
    daskr_value_t *keys = NULL;
    CHECK_OK(daskr_graph_from_json(FILE_TEXT, strlen(FILE_TEXT), dir, &g, &keys));
    if (!g || !keys) return;
    check_file_result(g, keys);

    /* Round trip: written with paths relative to `dir`, read back, same results. */
    daskr_value_t *json = NULL;
    CHECK_OK(daskr_graph_to_json(g, keys, dir, &json));
    const char *text = NULL;
    size_t len = 0;
    CHECK(daskr_value_get_string(json, &text, &len));
    daskr_graph_t *g2 = NULL;
    daskr_value_t *keys2 = NULL;
    CHECK_OK(daskr_graph_from_json(text, len, dir, &g2, &keys2));
    if (g2 && keys2) check_file_result(g2, keys2);
    daskr_graph_free(g2);
    daskr_value_free(keys2);

    /* From a file: relative plugin paths are relative to the file's folder. */
    char path[400];
    snprintf(path, sizeof path, "%s/graph.json", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fwrite(text, 1, len, f);
        fclose(f);
    }
    daskr_graph_t *g3 = NULL;
    CHECK_OK(daskr_graph_from_file(path, &g3, NULL)); /* keys not wanted */
    if (g3) check_file_result(g3, keys);
    daskr_graph_free(g3);
    remove(path);
    daskr_value_free(json);
    daskr_graph_free(g);
    daskr_value_free(keys);

    /* Errors name the key and the place; nothing is handed out. */
    const char *bad = "{\"plugins\": {\"ex\": \"libexample.so\"}, \"graph\": {\"z\": {\"fn\": \"ex:add\", "
                      "\"args\": [1, {\"fn\": \"ex:inc\", \"kwargs\": {\"scale\": {\"x\": 1}}}]}}}";
    g = NULL;
    daskr_error_t *e = daskr_graph_from_json(bad, strlen(bad), dir, &g, &keys);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_INVALID_GRAPH);
    CHECK_STR(e ? daskr_error_key(e) : NULL, "z");
    CHECK(e && check_contains(daskr_error_message(e), "key 'z': args[1].kwargs.scale: "));
    daskr_error_free(e);
    CHECK(g == NULL);
    const char *unknown = "{\"plugins\": {\"ex\": \"libexample.so\"}, \"graph\": {\"q\": {\"fn\": \"ex:nope\"}}}";
    CHECK_ERR(daskr_graph_from_json(unknown, strlen(unknown), dir, &g, NULL), DASKR_ERROR_PLUGIN, "q");
    CHECK_ERR(daskr_graph_from_json(NULL, 3, dir, &g, NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_graph_from_json("", 0, dir, &g, NULL), DASKR_ERROR_INVALID_GRAPH, NULL);
    CHECK_ERR(daskr_graph_from_file("/nonexistent/graph.json", &g, NULL), DASKR_ERROR_IO, NULL);
    /* A folder is no more a graph file than a missing path: io, naming it. */
    CHECK_ERR(daskr_graph_from_file(dir, &g, NULL), DASKR_ERROR_IO, NULL);
    CHECK(g == NULL);
}

int main(void) {
    if (!build_plugin()) {
        fprintf(stderr, "plugin.c: could not build the example plugin\n");
        return 1;
    }
    test_open_and_declaration();
    test_tasks_outlive_the_handle();
    test_graph_files();
    remove(lib);
    rmdir(dir);
    return check_report("plugin");
}
