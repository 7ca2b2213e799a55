// Split-K fp32 GEMM: C[M][N] = A[M][K] * B[K][N]. Block z computes the K-slice
// [z*K/S, (z+1)*K/S) for one 16x16 tile, writes its partial tile to a workspace,
// and the last block to arrive (global counter, threadfence) sums all slices.
// Block 0 of the slice dimension then also waits on a release flag so blocks meet.
extern "C" __global__ void splitk_gemm(const float* A, const float* B, float* C, float* work,
                                        unsigned* counter, unsigned* flag, int M, int N, int K, int S) {
    int row = blockIdx.y * 16 + threadIdx.y;
    int col = blockIdx.x * 16 + threadIdx.x;
    int z = blockIdx.z;
    int kper = K / S;
    float acc = 0.f;
    for (int k = z * kper; k < (z + 1) * kper; ++k) acc += A[row * K + k] * B[k * N + col];
    work[(z * M + row) * N + col] = acc;
    __threadfence();
    __syncthreads();
    __shared__ unsigned last;
    int tile = blockIdx.y * gridDim.x + blockIdx.x;
    if (threadIdx.x == 0 && threadIdx.y == 0) last = atomicAdd(&counter[tile], 1u) == (unsigned)(S - 1);
    __syncthreads();
    if (last) {
        __threadfence();
        float sum = 0.f;
        for (int s = 0; s < S; ++s) sum += work[(s * M + row) * N + col];
        C[row * N + col] = sum;
        __syncthreads();
        if (threadIdx.x == 0 && threadIdx.y == 0) {
            asm volatile("st.release.gpu.global.u32 [%0], %1;" :: "l"(flag + tile), "r"(1u) : "memory");
        }
    } else if (z == 0) {
        // Wait for the fix-up block of this tile (spin on an acquire load).
        if (threadIdx.x == 0 && threadIdx.y == 0) {
            unsigned v;
            do { asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(flag + tile) : "memory"); } while (v == 0);
        }
        __syncthreads();
    }
}
