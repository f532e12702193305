# CUDA backend build, included by native/Makefile.
#   DBT_CUDA=0        never build it;  DBT_CUDA=1  require it (error without nvcc);  unset: build when nvcc is found
#   DBT_CUDA_ARCH     compute capabilities to build for, e.g. "86", "sm_80,sm_90", "80 90"; the last one also
#                     gets PTX. Unset: the visible GPU's (nvidia-smi), else 75 80 86 89 90 + PTX 90.
#   NVCC              the compiler (default: nvcc on PATH, else /usr/local/cuda/bin/nvcc)
#   DBT_CUDA_WERROR=0 compiler warnings in the CUDA sources stay warnings (default: errors)
# Adds the CUDA objects to libdbtcore.a (BACKEND_OBJS), the static CUDA runtime to BACKEND_LIBS (so the
# addon loads on machines without the toolkit), -DDBT_WITH_CUDA to every object, and the targets
# out/dbt-test-cuda and out/dbt-bench-cuda (the GPU test runner and benchmarks, run by scripts/gpu-check.sh).

DBT_CUDA ?=
comma := ,
ifneq ($(DBT_CUDA),0)
NVCC ?= $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
ifeq ($(strip $(NVCC)),)
  ifeq ($(DBT_CUDA),1)
    $(error DBT_CUDA=1 but nvcc was not found: put the CUDA toolkit's bin/ on PATH or set NVCC=/path/to/nvcc)
  endif
else
CUDA_ENABLED := 1
# This file is included above the Makefile's first target: keep `all` the default goal.
.DEFAULT_GOAL := all
# The toolkit root as nvcc itself reports it (nvcc may be a wrapper script elsewhere on PATH).
CUDA_HOME ?= $(realpath $(shell $(NVCC) --dryrun -c -x cu /dev/null -o /dev/null 2>&1 | sed -n 's/^\#\$$ TOP=//p'))
CUDART_STATIC := $(firstword $(wildcard $(CUDA_HOME)/lib64/libcudart_static.a $(CUDA_HOME)/targets/*/lib/libcudart_static.a))
ifeq ($(CUDART_STATIC),)
  $(error nvcc found at $(NVCC) but not libcudart_static.a under $(CUDA_HOME); set CUDA_HOME or DBT_CUDA=0)
endif

# Architectures: explicit list, else the visible GPU's, else the release list.
CUDA_ARCH_LIST := $(strip $(subst sm_,,$(subst compute_,,$(subst ., ,$(subst $(comma), ,$(DBT_CUDA_ARCH))))))
ifeq ($(CUDA_ARCH_LIST),)
  CUDA_ARCH_LIST := $(strip $(shell nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d '. '))
endif
ifeq ($(CUDA_ARCH_LIST),)
  CUDA_ARCH_LIST := 75 80 86 89 90
endif
CUDA_PTX_ARCH := $(lastword $(CUDA_ARCH_LIST))
CUDA_GENCODE := $(foreach a,$(CUDA_ARCH_LIST),-gencode arch=compute_$(a),code=sm_$(a)) \
                -gencode arch=compute_$(CUDA_PTX_ARCH),code=compute_$(CUDA_PTX_ARCH)

CUDA_SRCS := $(sort $(wildcard cuda/*.cu))
CUDA_HOST_SRCS := $(sort $(wildcard cuda/*.cpp))
CUDA_OBJS := $(CUDA_SRCS:%.cu=$(OUT)/obj/%.o) $(CUDA_HOST_SRCS:%.cpp=$(OUT)/obj/%.o)
CUDA_TEST_SRCS := $(sort $(wildcard test/cuda/*.cpp))
CUDA_BENCH_SRCS := $(sort $(wildcard bench/cuda/*.cpp))
CUDA_TEST_OBJS := $(CUDA_TEST_SRCS:%.cpp=$(OUT)/obj/%.o) $(OUT)/obj/test/cuda/harness_main.o $(OUT)/obj/test/nn_util.o
CUDA_BENCH_OBJS := $(CUDA_BENCH_SRCS:%.cpp=$(OUT)/obj/%.o)

CUDA_DEFS := -DDBT_WITH_CUDA -DDBT_CUDA_ARCHS='"$(CUDA_ARCH_LIST)"' -DDBT_CUDA_PTX_ARCH=$(CUDA_PTX_ARCH)
CPPFLAGS += -DDBT_WITH_CUDA
BACKEND_OBJS += $(CUDA_OBJS)
BACKEND_LIBS += $(CUDART_STATIC) -ldl -lrt

# Warnings are errors in the CUDA sources (host side through -Xcompiler, device side through nvcc), unless
# DBT_CUDA_WERROR=0 (scripts/gpu-check.sh: a toolkit or g++ version never tried here must not fail the build
# over a new warning; they are still printed).
DBT_CUDA_WERROR ?= 1
ifeq ($(DBT_CUDA_WERROR),0)
  CUDA_WERROR :=
else
  CUDA_WERROR := -Werror
endif
NVCCFLAGS ?= -O3
NVCC_ALL_FLAGS := -std=c++17 $(NVCCFLAGS) $(CUDA_GENCODE) --expt-relaxed-constexpr \
                  $(if $(CUDA_WERROR),-Werror all-warnings) \
                  -Xcompiler -fPIC,-pthread,-Wall,-Wextra,-Wno-unused-parameter$(if $(CUDA_WERROR),$(comma)-Werror)
CUDA_HOST_FLAGS := -I$(CUDA_HOME)/include $(CUDA_DEFS) $(CUDA_WERROR)

$(OUT)/obj/cuda/%.o: cuda/%.cu $(OUT)/cuda-flags.txt
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_ALL_FLAGS) -Isrc -Icuda -I$(CUDA_HOME)/include $(CUDA_DEFS) -MMD -MP -MF $(@:.o=.d) -c $< -o $@

# Host-only CUDA code (runtime, allocator) compiles with the C++ compiler against the CUDA headers.
$(OUT)/obj/cuda/%.o: cuda/%.cpp $(OUT)/cuda-flags.txt
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) $(CUDA_HOST_FLAGS) -Icuda -c $< -o $@

$(OUT)/obj/test/cuda/%.o $(OUT)/obj/bench/cuda/%.o: CPPFLAGS += -Itest -Ibench -Icuda -I$(CUDA_HOME)/include $(CUDA_WERROR)

# The shared harness with its main() renamed: test/cuda/cuda_main.cpp checks for a device first.
$(OUT)/obj/test/cuda/harness_main.o: test/harness.cpp $(OUT)/build-flags.txt
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -Dmain=dbt_harness_main -c $< -o $@

# Rebuild the CUDA objects when the architecture list or compiler changes.
$(OUT)/cuda-flags.txt: FORCE
	@mkdir -p $(dir $@)
	@echo "$(NVCC) $(NVCC_ALL_FLAGS) $(CUDA_DEFS)" > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp

$(OUT)/dbt-test-cuda: $(CUDA_TEST_OBJS) $(LIB)
	$(CXX) $(CXXFLAGS) $(CUDA_TEST_OBJS) $(LIB) $(BACKEND_LIBS) $(LDFLAGS) -o $@

$(OUT)/dbt-bench-cuda: $(CUDA_BENCH_OBJS) $(LIB)
	$(CXX) $(CXXFLAGS) $(CUDA_BENCH_OBJS) $(LIB) $(BACKEND_LIBS) $(LDFLAGS) -o $@

all: $(OUT)/dbt-test-cuda $(OUT)/dbt-bench-cuda
cuda: lib $(OUT)/dbt-test-cuda $(OUT)/dbt-bench-cuda
test-cuda: $(OUT)/dbt-test-cuda
	$(OUT)/dbt-test-cuda $(TEST_ARGS)
.PHONY: cuda test-cuda

-include $(CUDA_OBJS:.o=.d) $(CUDA_TEST_OBJS:.o=.d) $(CUDA_BENCH_OBJS:.o=.d)
endif
endif
