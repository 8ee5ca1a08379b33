# pipelines/figures.mk: the paper's tables and figures as files (included by Makefile).
#
#   make table1   Table 1 layout (til-report: mean ± std over seeds, best/second marked, paired t-test)
#   make table2   dataset statistics
#   make fig3     Recall@20 drop under Noisy-Pos, Noisy-Neg, Noisy-Pos+Neg per method
#   make fig4     case study: mean learned weight by rating(u,i) in {4,5} x rating(u,j) in {1,2,3}
#   make fig5     Recall@20 against the number of clusters (TIL-MI)
#   make fig6     training time against Recall@20 (BPR, TIL-UI, TIL-MI on several backbones)
#   make fig7     TIL-UI vs TIL-MIK vs TIL-MI
#   make <run>.curve.png   training curve of one run, e.g. out/demo/mf/bpr/lr1e-2_reg1e-4/s1.curve.png
#
# Every figure depends on the results it plots, so `make fig3` runs whatever training is
# missing (with the GRID/SEEDS/EPOCHS knobs of pipelines/til.mk). Knobs: FIG_DATASET,
# T1_DATASETS, T1_BACKBONES, T1_METHODS, T2_DATASETS, FIG3_METHODS, FIG4_DATASET, FIG4_FLAGS,
# FIG5_KS, FIG5_CFG, FIG6_BACKBONES, FIG7_BACKBONES.

FIG_DATASET    ?= gowalla
T1_DATASETS    ?= $(FIG_DATASET)
T1_BACKBONES   ?= mf lightgcn
T1_METHODS     ?= bpr wbpr aobpr pris tce rce tce-bpr rce-bpr til-ui til-mi
T2_DATASETS    ?= gowalla lastfm ml100k
FIG3_METHODS   ?= bpr tce-bpr rce-bpr til-ui til-mi
FIG5_KS        ?= 1 5 10 20 40 60 80 100
FIG5_CFG       ?= lr1e-3_reg1e-4_a1_g1e-3
FIG6_BACKBONES ?= mf neumf lightgcn
FIG7_BACKBONES ?= mf lightgcn

res_path = $(OUT)/$1/$2.$3.results
.PHONY: table1 table2 fig3 fig4 fig5 fig6 fig7

table1: $(OUT)/table1.md
	@cat $<
T1_RESULTS = $(foreach d,$(T1_DATASETS),$(foreach b,$(T1_BACKBONES),$(foreach m,$(T1_METHODS),$(call res_path,$d,$b,$m))))
$(OUT)/table1.md: $$(T1_RESULTS) bin/til-report
	bin/til-report --ours til-mi $(T1_RESULTS) > $@.tmp && mv $@.tmp $@

table2: $(OUT)/table2.md
	@cat $<
$(OUT)/table2.md: $$(foreach d,$$(T2_DATASETS),$$(OUT)/$$d/all.til) pipelines/table2.sh bin/til-cat
	pipelines/table2.sh $(foreach d,$(T2_DATASETS),$d=$(OUT)/$d/all.til) > $@.tmp && mv $@.tmp $@

# fig3: relative drop of test Recall@20 from the clean training data to each noisy variant
FIG3_RESULTS = $(foreach m,$(FIG3_METHODS),$(foreach v,$(FIG_DATASET) $(FIG_DATASET)+noisy-pos $(FIG_DATASET)+noisy-neg $(FIG_DATASET)+noisy-posneg,$(call res_path,$v,mf,$m)))
fig3: $(OUT)/fig3.png
	@echo "$<"; cat $(OUT)/fig3.tsv
$(OUT)/fig3.tsv: $$(FIG3_RESULTS) pipelines/agg.sh
	{ printf 'method\tNoisy-Pos\tNoisy-Neg\tNoisy-Pos+Neg\n'; \
	  for m in $(FIG3_METHODS); do \
	    pipelines/agg.sh $(foreach v,clean=$(FIG_DATASET) pos=$(FIG_DATASET)+noisy-pos neg=$(FIG_DATASET)+noisy-neg posneg=$(FIG_DATASET)+noisy-posneg,$(firstword $(subst =, ,$v))=$(OUT)/$(lastword $(subst =, ,$v))/mf.$$m.results) | \
	    awk -F'\t' -v m=$$m '$$5 == "recall" && $$6 == "20" { r[$$1] = $$7 } \
	      END { printf "%s\t%.2f\t%.2f\t%.2f\n", m, 100*(r["clean"]-r["pos"])/r["clean"], 100*(r["clean"]-r["neg"])/r["clean"], 100*(r["clean"]-r["posneg"])/r["clean"] }'; \
	  done; } > $@.tmp && mv $@.tmp $@
$(OUT)/fig3.png: $(OUT)/fig3.tsv pipelines/plot_bars.sh
	pipelines/plot_bars.sh $@ "Fig. 3: drop of test Recall@20 under noisy training data ($(FIG_DATASET), MF)" "Recall@20 drop relative to clean training data (%)" $<

# fig5: TIL-MI with K clusters (one configuration, seed 1)
FIG5_RUNS = $(foreach k,$(FIG5_KS),$(OUT)/$(FIG_DATASET)/mf/til-mi/$(FIG5_CFG)_k$k/s1.test.tsv)
fig5: $(OUT)/fig5.png
	@echo "$<"; cat $(OUT)/fig5.tsv
$(OUT)/fig5.tsv: $$(FIG5_RUNS)
	{ printf 'clusters\trecall@20\n'; for k in $(FIG5_KS); do \
	    awk -F'\t' -v k=$$k '$$5 == "recall" && $$6 == "20" { printf "%s\t%s\n", k, $$7 }' $(OUT)/$(FIG_DATASET)/mf/til-mi/$(FIG5_CFG)_k$$k/s1.test.tsv; \
	  done; } > $@.tmp && mv $@.tmp $@
$(OUT)/fig5.png: $(OUT)/fig5.tsv
	pipelines/plot_xy.sh $@ "Fig. 5: TIL-MI test Recall@20 against the number of clusters ($(FIG_DATASET), MF)" "number of clusters K" "test Recall@20" $<

# fig6: training time (seconds in the batch loop and sampling, summed over the epochs run,
# mean over seeds, of the selected configuration) against test Recall@20
FIG6_RESULTS = $(foreach b,$(FIG6_BACKBONES),$(foreach m,bpr til-ui til-mi,$(call res_path,$(FIG_DATASET),$b,$m)))
fig6: $(OUT)/fig6.png
	@echo "$<"; cat $(OUT)/fig6.tsv
$(OUT)/fig6.tsv: $$(FIG6_RESULTS) pipelines/fig6.sh
	pipelines/fig6.sh $(FIG6_RESULTS) > $@.tmp && mv $@.tmp $@
$(OUT)/fig6.png: $(OUT)/fig6.tsv
	pipelines/plot_scatter.sh $@ "Fig. 6: training time against test Recall@20 ($(FIG_DATASET))" "training time (s, batch loop + sampling, all epochs run)" "test Recall@20" $<

# fig7: the three TIL variants
FIG7_RESULTS = $(foreach b,$(FIG7_BACKBONES),$(foreach m,til-ui til-mik til-mi,$(call res_path,$(FIG_DATASET),$b,$m)))
fig7: $(OUT)/fig7.png
	@echo "$<"; cat $(OUT)/fig7.tsv
$(OUT)/fig7.tsv: $$(FIG7_RESULTS) pipelines/agg.sh
	pipelines/agg.sh $(FIG7_RESULTS) | awk -F'\t' '$$5 == "recall" && $$6 == "20" { v[$$3 "\t" $$4] = $$7; b[$$3] = 1 } \
	  END { printf "backbone\tTIL-UI\tTIL-MIK\tTIL-MI\n"; n = split("$(FIG7_BACKBONES)", bb, " "); \
	        for (i = 1; i <= n; i++) printf "%s\t%s\t%s\t%s\n", bb[i], v[bb[i] "\ttil-ui"], v[bb[i] "\ttil-mik"], v[bb[i] "\ttil-mi"] }' > $@.tmp && mv $@.tmp $@
$(OUT)/fig7.png: $(OUT)/fig7.tsv pipelines/plot_bars.sh
	pipelines/plot_bars.sh $@ "Fig. 7: TIL-UI vs TIL-MIK vs TIL-MI ($(FIG_DATASET))" "test Recall@20" $<

# training curve of one run
$(OUT)/%.curve.png: $(OUT)/%.model pipelines/plot_curves.sh
	pipelines/plot_curves.sh $@ "$* (training curve)" "$(notdir $(patsubst %/,%,$(dir $*)))=$(OUT)/$*.log"

# fig4: case study (the paper's Fig. 4). TIL-MI is trained once on a rated dataset (seed 1,
# configuration FIG4_CFG) and the weights of one more epoch's triplets are dumped (final
# parameters); each triplet (u, i, j) whose positive i was rated 4 or 5 and whose negative j
# was rated 1..3 by u (the sub-threshold ratings kept aside by til-preprocess --low-ratings)
# falls into a cell (rating(u,i), rating(u,j)); cells show the mean weight normalised to the
# largest cell x 100.
FIG4_DATASET ?= ml100k
FIG4_CFG     ?= lr1e-3_reg1e-4_a1_g1e-3
FIG4_FLAGS   ?=
FIG4_DIR      = $(OUT)/$(FIG4_DATASET)/fig4
fig4: $(OUT)/fig4.png
	@echo "$<"; cat $(OUT)/fig4.tsv
$(OUT)/$(FIG4_DATASET)/fig4/weights.tsv: $(OUT)/$(FIG4_DATASET)/split/train.til $(OUT)/$(FIG4_DATASET)/split/valid.til bin/til-train
	@mkdir -p $(@D)
	bin/til-train -q --train $< --valid $(word 2,$^) --method til-mi $$(pipelines/cfgflags.sh $(FIG4_CFG)) --seed 1 \
	    --epochs $(EPOCHS) --patience $(PATIENCE) --eval-every $(EVAL_EVERY) --threads $(THREADS) $(TRAIN_EXTRA) \
	    $(TRAIN_EXTRA_til-mi) $(FIG4_FLAGS) --log $(@D)/train.log --dump-weights $@ --out $(@D)/model
$(OUT)/fig4.tsv: $(FIG4_DIR)/weights.tsv $(OUT)/$(FIG4_DATASET)/all.til pipelines/fig4.sh
	pipelines/fig4.sh $< $(OUT)/$(FIG4_DATASET)/all.til $(OUT)/$(FIG4_DATASET)/low.til > $@.tmp && mv $@.tmp $@
$(OUT)/fig4.png: $(OUT)/fig4.tsv pipelines/plot_bars.sh
	pipelines/plot_bars.sh $@ "Fig. 4: learned triplet weight by rating of the positive and of the negative item ($(FIG4_DATASET), TIL-MI)" "mean weight (largest cell = 100)" $<
