# pipelines/til.mk: the paper's experiments as file targets (included by Makefile).
#
#   make <dataset>.<method>.results              MF backbone
#   make <dataset>.<backbone>.<method>.results
#   make <dataset>.noisy-pos.<method>.results    (noisy-neg, noisy-posneg; also with a backbone)
#
# Every stage is a file under $(OUT) with its true prerequisites (the tool binaries
# included), so make reruns only what is stale and `make -j N` is safe; tools write
# atomically and recipes that redirect write a temporary and rename.
#
# Stages: raw file -> $(OUT)/<ds>/all.til (til-preprocess) -> split/{train,valid,test}.til
# (til-split) -> <bb>/<method>/<cfg>/s<seed>.model (til-train) -> .valid.tsv/.test.tsv
# (til-eval) -> <bb>.<method>.results (best config on mean valid Recall@20, test rows of
# that config for every seed).
#
# Knobs: RAW_DIR (folder holding the raw files, laid out as ../shared/data), OUT,
# GRID=full|small|demo, SEEDS=N (training seeds 1..N), EPOCHS, PATIENCE, EVAL_EVERY,
# THREADS, SPLIT_SEED, NOISE_RATIO, TRAIN_EXTRA (flags for every til-train run) and
# TRAIN_EXTRA_<method> (flags for one method, e.g. TRAIN_EXTRA_til-mi="--pretrain-epochs 50").

RAW_DIR    ?= data/raw
OUT        ?= out
GRID       ?= small
SEEDS      ?= 5
EPOCHS     ?= 3000
PATIENCE   ?= 100
EVAL_EVERY ?= 1
THREADS    ?= $(shell nproc 2>/dev/null || echo 2)
SPLIT_SEED ?= 1
NOISE_RATIO ?= 0.5
TRAIN_EXTRA ?=

SEED_LIST := $(shell seq 1 $(SEEDS))

# ---- datasets: raw file (relative to RAW_DIR) and til-preprocess flags ----
RAW_gowalla   := gowalla/gowalla.adj.txt.gz
PREP_gowalla  := --format adj --kcore 0
RAW_ml100k    := ml-100k/u.data
PREP_ml100k   := --format ml100k --min-rating 4 --kcore 10
RAW_lastfm    := lastfm-2k/user_artists.txt
PREP_lastfm   := --format lastfm --kcore 10
RAW_amazon_cd := amazon/ratings_CDs_and_Vinyl.csv
PREP_amazon_cd := --format amazon --min-rating 4 --kcore 10
RAW_demo      := $(OUT)/demo/raw.tsv
PREP_demo     := --format ml100k --min-rating 4 --kcore 10

raw_of = $(if $(filter demo,$1),$(RAW_demo),$(RAW_DIR)/$(RAW_$1))

# ---- hyper-parameter grids (config names encode flags: see pipelines/cfgflags.sh) ----
ifeq ($(GRID),full)
  LRS  := 1e-4 1e-3 1e-2
  REGS := 1e-6 1e-5 1e-4 1e-3 1e-2
  ALPHAS := 0.01 0.1 1 5 10
  GAMMAS := 1e-4 1e-3 1e-2 1e-1
else ifeq ($(GRID),demo)
  LRS  := 1e-2
  REGS := 1e-4
  ALPHAS := 1
  GAMMAS := 1e-3
else
  LRS  := 1e-3 1e-2
  REGS := 1e-5 1e-4 1e-3
  ALPHAS := 1
  GAMMAS := 1e-3
endif

base_cfgs := $(foreach l,$(LRS),$(foreach r,$(REGS),lr$(l)_reg$(r)))
cfgs_of = $(if $(filter til-mi,$1),$(foreach c,$(base_cfgs),$(foreach a,$(ALPHAS),$(foreach g,$(GAMMAS),$(c)_a$(a)_g$(g)))),$(if $(filter til-mik,$1),$(foreach c,$(base_cfgs),$(foreach a,$(ALPHAS),$(c)_a$(a))),$(base_cfgs)))

# dataset directory for a name like gowalla or gowalla+noisy-pos
clean_of = $(firstword $(subst +, ,$1))
noise_of = $(word 2,$(subst +, ,$1))

TOOLS_DATA := bin/til-preprocess bin/til-split bin/til-noise

.SECONDEXPANSION:
.SECONDARY:

# ---- data stages ----
$(OUT)/demo/raw.tsv: bin/til-synth
	@mkdir -p $(@D)
	bin/til-synth --seed 1 -o $@

$(OUT)/%/all.til: $$(call raw_of,$$*) bin/til-preprocess
	@mkdir -p $(@D)
	bin/til-preprocess $(PREP_$*) --user-map $(@D)/users.map --item-map $(@D)/items.map \
	    $(if $(findstring --min-rating,$(PREP_$*)),--low-ratings $(@D)/low.til) -o $@ $< 2> $(@D)/preprocess.log || { cat $(@D)/preprocess.log >&2; exit 1; }
	@tail -n 3 $(@D)/preprocess.log >&2

$(OUT)/%/split/train.til $(OUT)/%/split/valid.til $(OUT)/%/split/test.til: $(OUT)/%/all.til bin/til-split
	@mkdir -p $(@D)
	bin/til-split --seed $(SPLIT_SEED) --train $(@D)/train.til --valid $(@D)/valid.til --test $(@D)/test.til $<

# noisy variants: only the training file changes
$(OUT)/%/noisy/train.til: $$(OUT)/$$(call clean_of,$$*)/split/train.til $$(OUT)/$$(call clean_of,$$*)/split/valid.til $$(OUT)/$$(call clean_of,$$*)/split/test.til bin/til-noise
	@mkdir -p $(@D)
	bin/til-noise --mode $(subst noisy-,,$(subst noisy-posneg,pos+neg,$(call noise_of,$*))) --ratio $(NOISE_RATIO) \
	    --seed $(SPLIT_SEED) --exclude $(word 2,$^) --exclude $(word 3,$^) --injected $(@D)/injected.til --removed $(@D)/removed.til -o $@ $<

train_of = $(if $(call noise_of,$1),$(OUT)/$1/noisy/train.til,$(OUT)/$1/split/train.til)
valid_of = $(OUT)/$(call clean_of,$1)/split/valid.til
test_of  = $(OUT)/$(call clean_of,$1)/split/test.til

# ---- training: $(OUT)/<ds>/<bb>/<method>/<cfg>/s<seed>.model ----
path_ds     = $(word 1,$(subst /, ,$1))
path_bb     = $(word 2,$(subst /, ,$1))
path_method = $(word 3,$(subst /, ,$1))
path_cfg    = $(word 4,$(subst /, ,$1))
path_seed   = $(patsubst s%,%,$(word 5,$(subst /, ,$1)))

$(OUT)/%.model: $$(call train_of,$$(call path_ds,$$*)) $$(call valid_of,$$(call path_ds,$$*)) bin/til-train
	@mkdir -p $(@D)
	bin/til-train --train $(word 1,$^) --valid $(word 2,$^) --backbone $(call path_bb,$*) \
	    --method $(call path_method,$*) $$(pipelines/cfgflags.sh $(call path_cfg,$*)) \
	    --seed $(call path_seed,$*) --epochs $(EPOCHS) --patience $(PATIENCE) --eval-every $(EVAL_EVERY) \
	    --threads $(THREADS) --log $(OUT)/$*.log $(TRAIN_EXTRA) $(TRAIN_EXTRA_$(call path_method,$*)) --out $@

$(OUT)/%.valid.tsv: $(OUT)/%.model bin/til-eval
	bin/til-eval --model $< --train $(call train_of,$(call path_ds,$*)) --test $(call valid_of,$(call path_ds,$*)) \
	    -k 10,20,50 --threads $(THREADS) --format tsv --tag dataset=$(call path_ds,$*) > $@.tmp && mv $@.tmp $@

$(OUT)/%.test.tsv: $(OUT)/%.model bin/til-eval
	bin/til-eval --model $< --train $(call train_of,$(call path_ds,$*)) --valid $(call valid_of,$(call path_ds,$*)) \
	    --test $(call test_of,$(call path_ds,$*)) -k 10,20,50 --threads $(THREADS) --format tsv \
	    --per-user $(OUT)/$*.test.peruser.tsv --tag dataset=$(call path_ds,$*) > $@.tmp && mv $@.tmp $@

# ---- selection: $(OUT)/<ds>/<bb>.<method>.results ----
res_ds     = $(patsubst %/,%,$(dir $1))
res_bb     = $(word 1,$(subst ., ,$(notdir $1)))
res_method = $(word 2,$(subst ., ,$(notdir $1)))
runs_of = $(foreach c,$(call cfgs_of,$(call res_method,$1)),$(foreach s,$(SEED_LIST),$(OUT)/$(call res_ds,$1)/$(call res_bb,$1)/$(call res_method,$1)/$(c)/s$(s)))

$(OUT)/%.results: $$(addsuffix .valid.tsv,$$(call runs_of,$$*)) $$(addsuffix .test.tsv,$$(call runs_of,$$*)) pipelines/select.sh
	pipelines/select.sh $(filter %.valid.tsv,$^) > $@.tmp && mv $@.tmp $@

# ---- user-facing names: <ds>.<method>.results, <ds>.<bb>.<method>.results,
#      <ds>.noisy-X.<method>.results, <ds>.noisy-X.<bb>.<method>.results ----
BACKBONES := mf neumf lightgcn mgccf
dot_words = $(subst ., ,$1)
user_res = $(if $(filter noisy-%,$(word 2,$(call dot_words,$1))),$(call user_res2,$(word 1,$(call dot_words,$1))+$(word 2,$(call dot_words,$1)),$(wordlist 3,9,$(call dot_words,$1))),$(call user_res2,$(word 1,$(call dot_words,$1)),$(wordlist 2,9,$(call dot_words,$1))))
user_res2 = $(if $(word 2,$2),$(OUT)/$1/$(word 1,$2).$(word 2,$2).results,$(OUT)/$1/mf.$(word 1,$2).results)

%.results: $$(call user_res,$$*)
	@echo "# $@ ($<)"
	@grep '^#' $< || true
	@grep -v '^#' $< | column -t -s '	' 2>/dev/null || grep -v '^#' $<
