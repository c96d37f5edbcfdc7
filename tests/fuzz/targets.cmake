# tests/fuzz/targets.cmake -- the libFuzzer targets, one per lib/smtp parser or filter. Included by
# tests/fuzz (which builds them, SLUICE_FUZZ tree) and tests/fuzz_run (which runs them from
# the main tree's ctest), so the two lists cannot drift apart. Each NAME has NAME.cc and a
# seed corpus in corpus/NAME/.
set(SLUICE_FUZZ_TARGETS
  fuzz_command_line
  fuzz_address
  fuzz_xforward
  fuzz_xtext
  fuzz_data_reader
  fuzz_reply_parser
  fuzz_line_splitter
  fuzz_forged_header_filter
  fuzz_message_id_scanner)
# The filter-bridge's pure decoders: the milter client's packet/response decoding and the
# header parser behind byte-exact pass-through. Each name maps to the library it fuzzes.
set(SLUICE_FUZZ_FILTER_TARGETS
  fuzz_milter_response
  fuzz_header_section)
set(SLUICE_FUZZ_LIB_fuzz_milter_response sluice_milter_codec)
set(SLUICE_FUZZ_LIB_fuzz_header_section sluice_filter_message)
# The frontend's pure decoder: the policy delegation protocol's answers (Postfix policy servers).
list(APPEND SLUICE_FUZZ_FILTER_TARGETS fuzz_policy_answer)
set(SLUICE_FUZZ_LIB_fuzz_policy_answer sluice_policy_codec)
