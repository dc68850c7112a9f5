//! CUDA C source of the two kernels, compiled at run time by NVRTC (no toolkit at build
//! time). [`super::emulate`] is the same arithmetic, operation for operation, in Rust: keep
//! the two in step.
//!
//! * `dre_conv_*`: direct 'same' convolution, `out[y][x] = sum_{a,c} in[y+oy-a][x+ox-c] *
//!   psf[a][c]` (zero outside), the sum in the order a (PSF row) outer, c inner, each step
//!   one fused multiply-add. Grid: x = model, y = 32x32 output tile; block 32x8 threads, each
//!   thread four outputs of one column. `_smem` stages the input tile with its halo in
//!   shared memory; `_global` reads global memory (PSFs too large for shared memory).
//! * `dre_fit_*`: chi of every object of a batch against every model. Grid: x = model,
//!   y = slices of the batch; a block stages its model stamp in shared memory (`_smem`) or
//!   reads it from global memory (`_global`), then each warp takes one object at a time:
//!   lane l sums pixels l, l+32, ... of the object's segment, and a butterfly of
//!   `__shfl_xor_sync` (offsets 16, 8, 4, 2, 1) gives every lane the total. First F_k, then
//!   the sum of the non-NaN chi terms and their count (numpy's nanmean). Output
//!   `chi[j * n_models + k]`. Compiled with `--fmad=false` so that `s*m`, `d - sm`, ... are
//!   rounded as written, like the CPU kernel.

/// Output tile edge of the convolution kernel.
pub const CONV_TILE: u32 = 32;
/// Thread rows of the convolution kernel (each thread computes CONV_TILE / CONV_ROWS outputs).
pub const CONV_ROWS: u32 = 8;
/// Threads per block of the fit kernel (8 warps).
pub const FIT_THREADS: u32 = 256;
/// Warp width the fit kernel's reductions are written for.
#[cfg(test)]
pub const WARP: usize = 32;

/// The kernels' names in [`SOURCE`].
pub const CONV_SMEM: &str = "dre_conv_smem";
pub const CONV_GLOBAL: &str = "dre_conv_global";
pub const FIT_SMEM: &str = "dre_fit_smem";
pub const FIT_GLOBAL: &str = "dre_fit_global";

/// Shared memory (bytes) of `dre_conv_smem` for a PSF of `pw` x `ph`.
pub fn conv_smem_bytes(pw: usize, ph: usize) -> usize {
    (CONV_TILE as usize + pw - 1) * (CONV_TILE as usize + ph - 1) * 4
}

pub const SOURCE: &str = r#"
#define CT 32
#define CR 8
#define NOUT (CT / CR)

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ unsigned warp_sum_u(unsigned v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <bool SMEM>
__device__ __forceinline__ void conv_impl(const float* __restrict__ in, float* __restrict__ out,
                                          int b, const float* __restrict__ psf, int pw, int ph) {
    extern __shared__ float tile[];
    const size_t stamp = (size_t)b * b;
    const float* __restrict__ src = in + (size_t)blockIdx.x * stamp;
    float* __restrict__ dst = out + (size_t)blockIdx.x * stamp;
    const int tiles_x = (b + CT - 1) / CT;
    const int x0 = (blockIdx.y % tiles_x) * CT, y0 = (blockIdx.y / tiles_x) * CT;
    const int oy = (ph - 1) / 2, ox = (pw - 1) / 2;
    const int tw = CT + pw - 1, th = CT + ph - 1;
    const int iy0 = y0 + oy - (ph - 1), ix0 = x0 + ox - (pw - 1);
    if (SMEM) {
        for (int i = threadIdx.y * CT + threadIdx.x; i < tw * th; i += CT * CR) {
            const int y = iy0 + i / tw, x = ix0 + i % tw;
            tile[i] = (y >= 0 && y < b && x >= 0 && x < b) ? src[y * b + x] : 0.0f;
        }
        __syncthreads();
    }
    const int lx = threadIdx.x;
    float acc[NOUT];
#pragma unroll
    for (int i = 0; i < NOUT; ++i) acc[i] = 0.0f;
    for (int a = 0; a < ph; ++a) {
        for (int c = 0; c < pw; ++c) {
            const float w = __ldg(psf + a * pw + c);
#pragma unroll
            for (int i = 0; i < NOUT; ++i) {
                const int ly = threadIdx.y + i * CR;
                float v;
                if (SMEM) {
                    v = tile[(ly + ph - 1 - a) * tw + lx + pw - 1 - c];
                } else {
                    const int y = y0 + ly + oy - a, x = x0 + lx + ox - c;
                    v = (y >= 0 && y < b && x >= 0 && x < b) ? __ldg(src + y * b + x) : 0.0f;
                }
                acc[i] = __fmaf_rn(v, w, acc[i]);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < NOUT; ++i) {
        const int y = y0 + threadIdx.y + i * CR, x = x0 + lx;
        if (y < b && x < b) dst[y * b + x] = acc[i];
    }
}

extern "C" __global__ void __launch_bounds__(CT * CR)
dre_conv_smem(const float* in, float* out, int b, const float* psf, int pw, int ph) {
    conv_impl<true>(in, out, b, psf, pw, ph);
}

extern "C" __global__ void __launch_bounds__(CT * CR)
dre_conv_global(const float* in, float* out, int b, const float* psf, int pw, int ph) {
    conv_impl<false>(in, out, b, psf, pw, ph);
}

template <bool SMEM>
__device__ __forceinline__ void fit_impl(const float* __restrict__ models, unsigned n_models,
                                         unsigned stamp, const unsigned* __restrict__ pix,
                                         const float* __restrict__ dat,
                                         const float* __restrict__ r2,
                                         const unsigned* __restrict__ start,
                                         const float* __restrict__ flux, unsigned n_obj,
                                         float* __restrict__ chi) {
    extern __shared__ float smem[];
    const unsigned k = blockIdx.x;
    const float* __restrict__ src = models + (size_t)k * stamp;
    const float* m = src;
    if (SMEM) {
        for (unsigned i = threadIdx.x; i < stamp; i += blockDim.x) smem[i] = src[i];
        __syncthreads();
        m = smem;
    }
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    const unsigned nw = blockDim.x >> 5;
    for (unsigned j = blockIdx.y * nw + warp; j < n_obj; j += nw * gridDim.y) {
        const unsigned a = start[j], e = start[j + 1];
        float fk = 0.0f;
        for (unsigned p = a + lane; p < e; p += 32u) fk += m[pix[p]];
        fk = warp_sum(fk);
        float out;
        if (fk == 0.0f) {
            out = __int_as_float(0x7fc00000);
        } else {
            const float s = flux[j] / fk;
            float sum = 0.0f;
            unsigned n = 0;
            for (unsigned p = a + lane; p < e; p += 32u) {
                const float sm = s * m[pix[p]];
                const float diff = dat[p] - sm;
                const float t = diff * diff / (sm + r2[p]);
                if (!isnan(t)) {
                    sum += t;
                    n += 1u;
                }
            }
            sum = warp_sum(sum);
            n = warp_sum_u(n);
            out = (float)((double)sum / (double)n);
        }
        if (lane == 0) chi[(size_t)j * n_models + k] = out;
    }
}

extern "C" __global__ void __launch_bounds__(256)
dre_fit_smem(const float* models, unsigned n_models, unsigned stamp, const unsigned* pix,
             const float* dat, const float* r2, const unsigned* start, const float* flux,
             unsigned n_obj, float* chi) {
    fit_impl<true>(models, n_models, stamp, pix, dat, r2, start, flux, n_obj, chi);
}

extern "C" __global__ void __launch_bounds__(256)
dre_fit_global(const float* models, unsigned n_models, unsigned stamp, const unsigned* pix,
               const float* dat, const float* r2, const unsigned* start, const float* flux,
               unsigned n_obj, float* chi) {
    fit_impl<false>(models, n_models, stamp, pix, dat, r2, start, flux, n_obj, chi);
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_every_kernel_and_matches_the_constants() {
        assert_eq!(SOURCE.matches("extern \"C\" __global__").count(), 4);
        for k in [CONV_SMEM, CONV_GLOBAL, FIT_SMEM, FIT_GLOBAL] {
            assert!(SOURCE.contains(&format!("\n{k}(")), "{k}");
        }
        assert!(SOURCE.contains(&format!("#define CT {CONV_TILE}\n")));
        assert!(SOURCE.contains(&format!("#define CR {CONV_ROWS}\n")));
        assert!(SOURCE.contains(&format!("__launch_bounds__({FIT_THREADS})")));
        assert_eq!(conv_smem_bytes(25, 25), 56 * 56 * 4);
    }
}
