// Non-inlined device functions (call sequences with params and return values,
// nested calls, a function with a loop and early return).
__device__ __noinline__ int clamp_add(int a, int b, int lo, int hi) {
    int s = a + b;
    if (s < lo) return lo;
    if (s > hi) return hi;
    return s;
}
__device__ __noinline__ float poly(float x, int n) {
    float acc = 0.f;
    for (int i = 0; i < n; ++i) acc = acc * x + (float)clamp_add(i, 1, 0, 3);
    return acc;
}
__device__ __noinline__ void store2(int* p, int a, int b) { p[0] = a; p[1] = b; }
extern "C" __global__ void calls(int* out, float* fout) {
    int t = threadIdx.x;
    int v = clamp_add(t, -5, 0, 20);
    store2(out + 2 * t, v, clamp_add(v, v, -1, 30));
    fout[t] = poly(0.5f, t % 6);
}
