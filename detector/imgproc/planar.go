package imgproc

/*
#cgo CFLAGS: -O3
#include <stddef.h>
#include <stdint.h>

// oc_planar writes an nw×nh image of sc interleaved 8-bit channels (rows sstride bytes
// apart) into c float planes of w×h values each, at offset (px, py), tensor channel k taking
// source byte order[k] through the 256-entry table luts[k]; the rest of each plane is
// pad[k]. One call, not a Go loop: the pixel loop runs while the caches are cold from
// inference, and C without bounds checks measured half the time of the Go loop.
static void oc_planar(const uint8_t *pix, int sstride, int nw, int nh, int sc,
                      float *dst, int w, int h, int px, int py, int c,
                      const float *luts, const int *order, const float *pad) {
	size_t plane = (size_t)w * h;
	for (int k = 0; k < c; k++) {
		float *p = dst + k * plane, v = pad[k];
		size_t top = (size_t)py * w, bottom = (size_t)(py + nh) * w;
		for (size_t i = 0; i < top; i++) p[i] = v;
		for (size_t i = bottom; i < plane; i++) p[i] = v;
		for (int y = py; y < py + nh; y++) {
			float *r = p + (size_t)y * w;
			for (int x = 0; x < px; x++) r[x] = v;
			for (int x = px + nw; x < w; x++) r[x] = v;
		}
	}
	if (c == 1) {
		const float *l = luts;
		for (int y = 0; y < nh; y++) {
			const uint8_t *s = pix + (size_t)y * sstride;
			float *d = dst + (size_t)(y + py) * w + px;
			for (int x = 0; x < nw; x++) d[x] = l[s[x * sc]];
		}
		return;
	}
	const float *l0 = luts, *l1 = luts + 256, *l2 = luts + 512;
	int o0 = order[0], o1 = order[1], o2 = order[2];
	for (int y = 0; y < nh; y++) {
		const uint8_t *s = pix + (size_t)y * sstride;
		size_t o = (size_t)(y + py) * w + px;
		float *d0 = dst + o, *d1 = dst + plane + o, *d2 = dst + 2 * plane + o;
		for (int x = 0; x < nw; x++, s += sc) {
			d0[x] = l0[s[o0]];
			d1[x] = l1[s[o1]];
			d2[x] = l2[s[o2]];
		}
	}
}
*/
import "C"

import "unsafe"

// planar writes the nw×nh content (pix: sc bytes a pixel, rows contiguous) into the first
// c planes of dst (w×h each) at (px, py) through luts, padding the rest with pad. The
// caller has checked every size against the slices.
func planar(pix []uint8, nw, nh, sc int, dst []float32, w, h, px, py, c int, luts *[3][256]float32, order [3]int, pad [3]float32) {
	ord := [3]C.int{C.int(order[0]), C.int(order[1]), C.int(order[2])}
	C.oc_planar((*C.uint8_t)(unsafe.Pointer(&pix[0])), C.int(nw*sc), C.int(nw), C.int(nh), C.int(sc),
		(*C.float)(unsafe.Pointer(&dst[0])), C.int(w), C.int(h), C.int(px), C.int(py), C.int(c),
		(*C.float)(unsafe.Pointer(&luts[0][0])), &ord[0], (*C.float)(unsafe.Pointer(&pad[0])))
}
