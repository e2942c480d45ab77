/* daskr_call_return_bytes, and telling one's own pointer values by their destructor. */
#include "check.h"

static int destroyed = 0;
static void mine(void *p) {
    (void)p;
    destroyed++;
}
static void theirs(void *p) { (void)p; }

static void bytes_task(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t n = 0;
    daskr_value_get_int(daskr_call_arg(call, 0), &n);
    if (n < 0) {
        daskr_call_return_bytes(call, NULL, 3); /* NULL with a length: the task fails */
        return;
    }
    daskr_call_return_bytes(call, n ? (const uint8_t *)"a\0b" : NULL, (size_t)n);
}

int main(void) {
    daskr_graph_t *g = daskr_graph_new();
    daskr_func_t *f = NULL;
    CHECK_OK(daskr_func_new("bytes", bytes_task, NULL, NULL, &f));
    const int64_t lens[] = {3, 0, -1};
    const char *keys[] = {"three", "none", "bad"};
    for (int i = 0; i < 3; i++) {
        daskr_comp_t *args[] = {daskr_comp_value(daskr_value_int(lens[i]))};
        CHECK_OK(daskr_graph_add_task(g, keys[i], f, args, 1, NULL, NULL, 0, NULL));
    }
    daskr_value_t *out = NULL;
    const uint8_t *data;
    size_t len;
    CHECK_OK(daskr_graph_get_key(g, "three", NULL, &out));
    CHECK(daskr_value_get_bytes(out, &data, &len) && len == 3 && memcmp(data, "a\0b", 3) == 0);
    daskr_value_free(out);
    CHECK_OK(daskr_graph_get_key(g, "none", NULL, &out));
    CHECK(daskr_value_kind(out) == DASKR_KIND_BYTES && daskr_value_get_bytes(out, &data, &len) && len == 0);
    daskr_value_free(out);
    CHECK_ERR(daskr_graph_get_key(g, "bad", NULL, &out), DASKR_ERROR_TASK_FAILED, "bad");

    daskr_value_t *a = NULL, *b = NULL, *c = NULL;
    int x = 0;
    CHECK_OK(daskr_value_pointer(&x, "t", mine, &a));
    CHECK_OK(daskr_value_pointer(&x, "t", theirs, &b));
    CHECK_OK(daskr_value_pointer(&x, "t", NULL, &c));
    CHECK(daskr_value_pointer_destructor(a) == mine);
    CHECK(daskr_value_pointer_destructor(b) == theirs);
    CHECK(daskr_value_pointer_destructor(c) == NULL);
    daskr_value_t *i = daskr_value_int(1);
    CHECK(daskr_value_pointer_destructor(i) == NULL);
    CHECK(daskr_value_pointer_destructor(NULL) == NULL);
    daskr_value_free(i);
    daskr_value_free(a);
    daskr_value_free(b);
    daskr_value_free(c);
    CHECK(destroyed == 1);

    daskr_func_free(f);
    daskr_graph_free(g);
    return check_report("call_extras");
}
