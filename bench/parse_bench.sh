#!/usr/bin/env bash
# make bench: til-preprocess parse speed on a generated Amazon-style CSV.
# PARSE_MB sets the size (default 256 MB; bench/parse_speed.sh 1024 for the 1 GB figure).
exec bash "$(dirname "$0")/parse_speed.sh" "${PARSE_MB:-256}"
