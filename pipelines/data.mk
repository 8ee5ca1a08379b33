# pipelines/data.mk: raw datasets into $(RAW_DIR) (included by Makefile).
#
# With RAW_DIR pointing at a folder that already holds the raw files (laid out as
# ../shared/data: gowalla/gowalla.adj.txt.gz, ml-100k/u.data, lastfm-2k/user_artists.txt,
# amazon/ratings_CDs_and_Vinyl.csv) nothing is downloaded. Otherwise the files are fetched
# (curl, resumable with -C -) into data/raw/, checked against data/SHA256SUMS when it pins
# them (files it does not pin are reported with their checksum, to be pinned), and a
# machine without network gets a message naming the URL and RAW_DIR.

DL_DIR := data/raw/download
CURL   := curl -fL --retry 3 -C -
URL_gowalla_train := https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/master/data/gowalla/train.txt
URL_gowalla_test  := https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/master/data/gowalla/test.txt
URL_ml100k        := https://files.grouplens.org/datasets/movielens/ml-100k.zip
URL_lastfm        := https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip
URL_amazon_cd     := https://snap.stanford.edu/data/amazon/productGraph/categoryFiles/ratings_CDs_and_Vinyl.csv

define fetch
	@mkdir -p $(dir $2)
	@echo "fetching $1" >&2
	@$(CURL) -o $2.part '$1' || { echo "download of $1 failed (offline?): put the file in place or run with RAW_DIR=<folder holding the raw files>" >&2; exit 1; }
	@pipelines/checksum.sh data/SHA256SUMS $2.part $(notdir $2)
	@mv $2.part $2
endef

$(DL_DIR)/gowalla-train.txt: ; $(call fetch,$(URL_gowalla_train),$@)
$(DL_DIR)/gowalla-test.txt:  ; $(call fetch,$(URL_gowalla_test),$@)
$(DL_DIR)/ml-100k.zip:       ; $(call fetch,$(URL_ml100k),$@)
$(DL_DIR)/hetrec2011-lastfm-2k.zip: ; $(call fetch,$(URL_lastfm),$@)

# the LightGCN Gowalla as one adjacency list per user (train and test lines merged)
data/raw/gowalla/gowalla.adj.txt.gz: $(DL_DIR)/gowalla-train.txt $(DL_DIR)/gowalla-test.txt
	@mkdir -p $(@D)
	awk '{ u = $$1; for (k = 2; k <= NF; k++) items[u] = items[u] " " $$k; if (!(u in seen)) { seen[u] = 1; order[n++] = u } } \
	     END { for (k = 0; k < n; k++) print order[k] items[order[k]] }' $^ | gzip -n > $@.tmp && mv $@.tmp $@

data/raw/ml-100k/u.data: $(DL_DIR)/ml-100k.zip
	@mkdir -p $(@D)
	unzip -p $< ml-100k/u.data > $@.tmp && pipelines/checksum.sh data/SHA256SUMS $@.tmp u.data && mv $@.tmp $@

data/raw/lastfm-2k/user_artists.txt: $(DL_DIR)/hetrec2011-lastfm-2k.zip
	@mkdir -p $(@D)
	unzip -p $< user_artists.dat | tail -n +2 > $@.tmp && mv $@.tmp $@

data/raw/amazon/ratings_CDs_and_Vinyl.csv:
	$(call fetch,$(URL_amazon_cd),$@)
