/* The few calls of ISA-L's igzip inflate that wire/isal.rs makes,
 * compiled against the installed <isa-l/igzip_lib.h>: the inflate state
 * is allocated and read here, so its layout never has to be restated in
 * Rust. The library itself is loaded when first wanted (dlopen), not
 * linked: a binary built with ISA-L still runs where it is missing (gzip
 * then falls back to zlib-rs), for example copied into a chroot. */
#include <dlfcn.h>
#include <isa-l/igzip_lib.h>
#include <stdlib.h>

static void (*load_init)(struct inflate_state *);
static void (*load_reset)(struct inflate_state *);
static int (*load_inflate)(struct inflate_state *);

/* Loads the library (by its soname, from the system's library path);
 * 1 if it and the three calls are there. Called once (Rust's OnceLock),
 * before any other call here. */
int tcpshut_isal_load(void)
{
	void *lib = dlopen("libisal.so.2", RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL)
		return 0;
	load_init = (void (*)(struct inflate_state *))dlsym(lib, "isal_inflate_init");
	load_reset = (void (*)(struct inflate_state *))dlsym(lib, "isal_inflate_reset");
	load_inflate = (int (*)(struct inflate_state *))dlsym(lib, "isal_inflate");
	if (load_init == NULL || load_reset == NULL || load_inflate == NULL) {
		dlclose(lib);
		return 0;
	}
	return 1;
}

struct inflate_state *tcpshut_isal_new(void)
{
	struct inflate_state *state = malloc(sizeof(*state));
	if (state != NULL) {
		load_init(state);
		state->crc_flag = ISAL_GZIP;
	}
	return state;
}

void tcpshut_isal_free(struct inflate_state *state)
{
	free(state);
}

/* Ready for the next gzip member. */
void tcpshut_isal_reset(struct inflate_state *state)
{
	load_reset(state);
	state->crc_flag = ISAL_GZIP;
}

/* One step: inflates from `in` into `out`; says how much of each it used,
 * and whether the member (its trailer checked) is finished. Returns
 * isal_inflate's code (negative: the stream is broken). */
int tcpshut_isal_inflate(struct inflate_state *state,
			 const uint8_t *in, uint32_t in_len, uint32_t *in_used,
			 uint8_t *out, uint32_t out_len, uint32_t *out_made,
			 int *finished)
{
	state->next_in = (uint8_t *)in;
	state->avail_in = in_len;
	state->next_out = out;
	state->avail_out = out_len;
	int code = load_inflate(state);
	*in_used = in_len - state->avail_in;
	*out_made = out_len - state->avail_out;
	*finished = state->block_state == ISAL_BLOCK_FINISH;
	return code;
}
