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
CFLAGS_ALL = $(CSTD) $(WARN) $(OPT) $(DEFS) $(BLAS_CFLAGS) -pthread -Itools/lib -MMD -MP $(CFLAGS)
LDLIBS_ALL = $(LDLIBS_BLAS) -lz -lm -pthread $(LDLIBS)

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

.PHONY: all test check-asan unit bats demo bench clean info
.DELETE_ON_ERROR:

all: info $(BINS)

info:
	@echo "til: cc=$(CC) opt='$(OPT)' blas=$(if $(filter 1,$(BLAS)),openblas,none) tools: $(notdir $(BINS))"

build/libtil.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

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

build/asan/tests/%: tests/unit/%.c tests/unit/unit.h build/asan/libtil.a
	@mkdir -p $(@D)
	$(CC) $(SANFLAGS) -Itests/unit -o $@ $< build/asan/libtil.a $(LDLIBS_BLAS) -lz -lm -pthread $(SAN)

unit: $(UNIT_BIN)

check-asan: $(UNIT_BIN)
	@tests/run.sh unit

test: all $(UNIT_BIN)
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
