// Module-scope __constant__ and __device__ variables, compiled with -lineinfo
// (see regen.sh) so the PTX carries .file/.loc directives.
__constant__ int lut[4] = {10, 20, 30, 40};
__device__ unsigned counter;
__device__ float bias[2] = {0.5f, -0.25f};
extern "C" __global__ void use_globals(int* out) {
    unsigned t = threadIdx.x;
    out[t] = lut[t & 3] + (int)(bias[t & 1] * 4.0f);
    atomicAdd(&counter, 1u);
    __syncthreads();
    if (t == 0) out[blockDim.x] = (int)atomicAdd(&counter, 0u);
}
