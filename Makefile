# til: Triplet Importance Learning toolkit.
#
#   make            build every tool into bin/ (and libtil.a)
#   make test       C unit tests (under ASan+UBSan) and bats tests; ends with "N passed, N failed"
#   make demo       the whole pipeline on the embedded synthetic dataset
#   make bench      speed figures against sgemm, NumPy and the PyTorch peer
#   make check-asan unit tests only, sanitizer build
#
# Knobs: CC, OPT (optimisation flags), CUDA=0/1 (default: 1 when nvcc is found),
#        BLAS=0 (build without OpenBLAS: slower reference paths only).

CC      ?= cc
OPT     ?= -O2 -march=native
WARN    := -Wall -Wextra -Werror
CSTD    := -std=c11 -D_GNU_SOURCE
BLAS    ?= 1
BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null)
BLAS_LIBS   := $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
ifeq ($(BLAS),1)
  DEFS += -DTIL_HAVE_BLAS=1
  LDLIBS_BLAS := $(BLAS_LIBS)
endif
# CUDA: nvcc on PATH or in /usr/local/cuda; CUDA=0 builds the CPU tools only.
# The .cu files (tools/cuda/) go into libtil.a; -DTIL_HAVE_CUDA=1 is not given
# to the sanitizer build, which stays CPU-only (til_cuda_stub.c).
NVCC    ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA    ?= $(if $(NVCC),1,0)
ifeq ($(CUDA),1)
  ifeq ($(NVCC),)
    $(error CUDA=1 but no nvcc found (PATH, /usr/local/cuda/bin); set NVCC=/path/to/nvcc or CUDA=0)
  endif
  CUDA_HOME  ?= $(patsubst %/bin/nvcc,%,$(NVCC))
  CUDA_ARCH  ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=compute_90
  # --fmad=false: no multiply-add contraction, as on the host (bit parity of til_device.h)
  NVCCFLAGS  ?= -O3 -std=c++17 --fmad=false $(CUDA_ARCH) -Xcompiler -Wall,-Wextra,-Werror -Werror all-warnings
  CUDA_DEFS  := -DTIL_HAVE_CUDA=1
  CU_SRC     := $(wildcard tools/cuda/*.cu)
  CU_OBJ     := $(CU_SRC:tools/cuda/%.cu=build/cuda/%.o)
  LDLIBS_CUDA := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++ -ldl -lrt
  CUDA_TESTS := build/cuda/test_cuda
endif
CFLAGS_ALL = $(CSTD) $(WARN) $(OPT) $(DEFS) $(CUDA_DEFS) $(BLAS_CFLAGS) -pthread -Itools/lib -MMD -MP $(CFLAGS)
LDLIBS_ALL = $(LDLIBS_BLAS) $(LDLIBS_CUDA) -lz -lm -pthread $(LDLIBS)

SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SANFLAGS  = $(CSTD) $(WARN) -O1 -g $(SAN) $(DEFS) $(BLAS_CFLAGS) -pthread -Itools/lib -MMD -MP

LIB_SRC  := $(wildcard tools/lib/*.c)
LIB_OBJ  := $(LIB_SRC:tools/lib/%.c=build/obj/%.o)
SLIB_OBJ := $(LIB_SRC:tools/lib/%.c=build/asan/obj/%.o)
TOOL_SRC := $(wildcard tools/*/til-*.c)
BINS     := $(addprefix bin/,$(basename $(notdir $(TOOL_SRC))))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)

vpath til-%.c $(sort $(dir $(TOOL_SRC)))

.PHONY: all test check-asan unit bats demo bench clean info test-cuda gpu-data
.DELETE_ON_ERROR:

all: info $(BINS) $(CUDA_TESTS)

info:
	@echo "til: cc=$(CC) opt='$(OPT)' blas=$(if $(filter 1,$(BLAS)),openblas,none) tools: $(notdir $(BINS))"
	@echo "til: backends: cpu$(if $(filter 1,$(CUDA)), cuda (nvcc $(NVCC), $(CUDA_HOME)/lib64: cudart cublas),) $(if $(filter 1,$(CUDA)),,[cuda not built: $(if $(NVCC),CUDA=0,no nvcc found)])"

# objects depend on the CUDA setting (til_cuda_stub.c, -DTIL_HAVE_CUDA): a switch rebuilds them
# (the stamp is rewritten at parse time only when the setting changed, so make -n stays quiet)
$(shell mkdir -p build && { echo "CUDA=$(CUDA)" | cmp -s - build/cuda.stamp || echo "CUDA=$(CUDA)" > build/cuda.stamp; })
$(LIB_OBJ): build/cuda.stamp

build/libtil.a: $(LIB_OBJ) $(CU_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

build/cuda/%.o: tools/cuda/%.cu tools/cuda/til_cuda_common.cuh $(wildcard tools/lib/*.h)
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) -Itools/lib -c -o $@ $<

# the CUDA kernel tests (run by make test-cuda; built, not run, by make / make test)
build/cuda/test_cuda: tests/cuda/test_cuda.c tests/unit/unit.h build/libtil.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -Itests/unit -o $@ $< build/libtil.a $(LDLIBS_ALL)

test-cuda: all
	@tests/cuda/run.sh

# Gowalla preprocessed and split (til-split seed 1) for bench/gpu_run.sh: data/gpu/
GPU_RAW ?= $(RAW_DIR)/gowalla/gowalla.adj.txt.gz
gpu-data: data/gpu/test.til
data/gpu/test.til: bin/til-preprocess bin/til-split
	@mkdir -p data/gpu
	@test -e $(GPU_RAW) || { echo "gpu-data: $(GPU_RAW) not found (RAW_DIR=../shared/data?)" >&2; exit 1; }
	bin/til-preprocess $(PREP_gowalla) $(GPU_RAW) -o data/gpu/all.til
	bin/til-split --seed 1 --train data/gpu/train.til --valid data/gpu/valid.til --test data/gpu/test.tmp.til data/gpu/all.til
	mv data/gpu/test.tmp.til $@

build/obj/%.o: tools/lib/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

bin/til-%: til-%.c build/libtil.a
	@mkdir -p $(@D) build/obj/tools
	$(CC) $(CFLAGS_ALL) -MF build/obj/tools/$(notdir $@).d -o $@ $< build/libtil.a $(LDLIBS_ALL)

# sanitizer build of the library and the unit tests
build/asan/libtil.a: $(SLIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

build/asan/obj/%.o: tools/lib/%.c
	@mkdir -p $(@D)
	$(CC) $(SANFLAGS) -c -o $@ $<

build/asan/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) build/asan/libtil.a
	@mkdir -p $(@D)
	$(CC) $(SANFLAGS) -Itests/unit -o $@ $< build/asan/libtil.a $(LDLIBS_BLAS) -lz -lm -pthread $(SAN)

unit: $(UNIT_BIN)

check-asan: $(UNIT_BIN)
	@tests/run.sh unit

test: all $(UNIT_BIN) $(CUDA_TESTS)
	@tests/run.sh all

demo: all
	@pipelines/demo.sh

bench: all
	@bench/run.sh

clean:
	rm -rf build bin

-include $(wildcard build/obj/*.d build/obj/tools/*.d build/asan/obj/*.d)

include pipelines/data.mk
include pipelines/til.mk
include pipelines/figures.mk
