# transform.cmake — rewrite one CUDA source for the CPU emulator (src/cuda/emu/emu.cpp):
#   cmake -D IN=file.cu -D OUT=file.cpp -P transform.cmake
#  * kernel<<<grid, block, smem, stream>>>(args)  ->  emu::Launch(grid, block, smem, stream).go(kernel, args)
#  * extern __shared__ float name[];              ->  float *name = (float *)emu::dyn_smem();
# Everything else compiles unchanged against the fake headers in shim/.
file(READ "${IN}" src)
# (the launch configuration may contain "->", never any other '>')
string(REGEX REPLACE "([A-Za-z_][A-Za-z0-9_]*(<[^<>;]*>)?)<<<(([^>-]|-[^>]|->)*)>>>\\(" "emu::Launch(\\3).go(\\1, " src "${src}")
string(REGEX REPLACE "extern __shared__ float ([A-Za-z_0-9]+)\\[\\];" "float *\\1 = (float *)emu::dyn_smem();" src "${src}")
file(WRITE "${OUT}" "${src}")
