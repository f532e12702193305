# CUDA emulated on the CPU (cuemu/README.md): the CUDA backend and its test runner compiled by
# cuemu/nvcc.mjs (g++ with cuemu's headers) into out/emu, run without a GPU or a CUDA toolkit.
#   make emu             -> out/emu/dbt-test-cuda
#   make test-cuda-emu   -> builds and runs the emulator's selftest, then the CUDA suite as an sm_80 card
#                           (A100: 163 KiB of shared memory per block; TEST_ARGS filters it as for `make test`),
#                           then the op-level tests again as sm_86 (RTX 30/40: 99 KiB, so the attention kernels
#                           pick smaller blocks) with threads scheduled in reverse order (barrier bugs whose
#                           reader runs before its writer in one order show in the other), then the op-level
#                           tests as sm_75 (Turing: no bf16 tensor cores) from their own build, out/emu75
#   make emu-addon       -> out/emu/dbt_native.node: the N-API addon (src/api) linked against the emulated
#                           CUDA backend; load it with DBT_NATIVE_ADDON=native/out/emu/dbt_native.node
#                           (test/nets/cuda-emu.test.ts runs the TypeScript GPU path on it)
EMU_OUT := out/emu
EMU_RT := $(EMU_OUT)/libcuemu.a

$(EMU_OUT)/rt/cuemu.o: cuemu/cuemu.cpp $(wildcard cuemu/include/*.h)
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O2 -fPIC -pthread -Wall -Wextra -Icuemu/include -c $< -o $@

$(EMU_RT): $(EMU_OUT)/rt/cuemu.o
	rm -f $@
	$(AR) rcs $@ $^

# The emulator's own tests (selftest.cu), compiled like a kernel file.
$(EMU_OUT)/cuemu-selftest: cuemu/selftest.cu cuemu/nvcc.mjs $(EMU_RT)
	node cuemu/nvcc.mjs -std=c++17 -O1 -Xcompiler -Wall,-Wextra -c $< -o $(EMU_OUT)/rt/selftest.o
	$(CXX) -pthread $(EMU_OUT)/rt/selftest.o $(EMU_RT) -o $@

# The CUDA backend built for the emulator: $(call emu_make,OUT,ARCH,TARGET).
emu_make = +$(MAKE) --no-print-directory OUT=$(1) NVCC="node $(CURDIR)/cuemu/nvcc.mjs" CUDA_HOME=$(CURDIR)/cuemu \
  CUDART_STATIC=$(EMU_RT) DBT_CUDA=1 DBT_CUDA_ARCH=$(2) DBT_CUDA_WERROR=0 $(1)/$(3)

emu: $(EMU_RT) $(EMU_OUT)/cuemu-selftest
	$(call emu_make,$(EMU_OUT),80,dbt-test-cuda)

# Turing (sm_75): f16 tensor cores only; bf16 matrix products are refused by name.
emu75: $(EMU_RT)
	$(call emu_make,out/emu75,75,dbt-test-cuda)

# The CUDA benchmarks on the emulator: with CUEMU_SKIP_KERNELS=1 they report the allocator's peak of the
# full-size cases (the SD1.5 training step's memory plan, docs/cuda.md) without running a kernel.
emu-bench: $(EMU_RT)
	$(call emu_make,$(EMU_OUT),80,dbt-bench-cuda)

test-cuda-emu: emu emu75
	$(EMU_OUT)/cuemu-selftest
	CUEMU_CC=80 $(EMU_OUT)/dbt-test-cuda $(TEST_ARGS)
	CUEMU_CC=86 CUEMU_SCHEDULE=reverse $(EMU_OUT)/dbt-test-cuda -unet -vae -fused -clip
	CUEMU_CC=75 out/emu75/dbt-test-cuda -unet -vae -fused -clip

# AddressSanitizer + UBSan over the emulated kernels (not part of npm test: ~3x slower): every tensor its
# own exact-size allocation (DBT_CUDA_NO_CACHE), so an access past a tensor's end is reported with the
# kernel's source line. The allocator-caching test is excluded (it tests the cache).
EMU_ASAN_OUT := out/emu-asan
EMU_ASAN_FLAGS := -g -fsanitize=address -fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
$(EMU_ASAN_OUT)/rt/cuemu.o: cuemu/cuemu.cpp $(wildcard cuemu/include/*.h)
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O1 -fPIC -pthread -Wall -Wextra $(EMU_ASAN_FLAGS) -Icuemu/include -c $< -o $@
$(EMU_ASAN_OUT)/libcuemu.a: $(EMU_ASAN_OUT)/rt/cuemu.o
	rm -f $@
	$(AR) rcs $@ $^
emu-asan: $(EMU_ASAN_OUT)/libcuemu.a
	+$(MAKE) --no-print-directory OUT=$(EMU_ASAN_OUT) SANITIZE=1 NVCC="node $(CURDIR)/cuemu/nvcc.mjs" \
	  CUDA_HOME=$(CURDIR)/cuemu CUDART_STATIC=$(EMU_ASAN_OUT)/libcuemu.a DBT_CUDA=1 DBT_CUDA_ARCH=80 DBT_CUDA_WERROR=0 \
	  NVCCFLAGS="-O1 $(foreach f,$(EMU_ASAN_FLAGS),-Xcompiler $(f))" $(EMU_ASAN_OUT)/dbt-test-cuda
test-cuda-emu-asan: emu-asan
	DBT_CUDA_NO_CACHE=1 ASAN_OPTIONS=detect_leaks=0 $(EMU_ASAN_OUT)/dbt-test-cuda -allocator_reuses $(TEST_ARGS)

# The addon as binding.gyp builds it (same sources, defines and flags), linked with this build's backend
# libraries; made inside emu_make so $(LIB) and $(BACKEND_LIBS) are out/emu's.
ADDON_OBJS := $(patsubst %.cpp,$(OUT)/obj/%.o,$(sort $(wildcard src/api/*.cpp)))
$(OUT)/addon-flags.txt: FORCE
	@mkdir -p $(dir $@)
	@node cuemu/addon-flags.mjs > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp
$(ADDON_OBJS): $(OUT)/addon-flags.txt
$(ADDON_OBJS): CPPFLAGS += $$(cat $(OUT)/addon-flags.txt) -DNAPI_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED
$(ADDON_OBJS): CXXFLAGS += -fexceptions
$(OUT)/dbt_native.node: $(ADDON_OBJS) $(LIB)
	$(CXX) -shared $(CXXFLAGS) $(ADDON_OBJS) $(LIB) $(BACKEND_LIBS) $(LDFLAGS) -o $@
-include $(ADDON_OBJS:.o=.d)

emu-addon: emu
	$(call emu_make,$(EMU_OUT),80,dbt_native.node)

.PHONY: emu emu75 emu-bench emu-asan test-cuda-emu test-cuda-emu-asan emu-addon
