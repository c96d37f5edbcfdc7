// tests/fuzz/fuzz_header_section.cc
//
// The filter-bridge's header parser on hostile bytes: the fields it finds are exactly the
// bytes before the header's end, in order (byte-exact pass-through depends on it); the body
// starts at or after the header's end and within the input; the bounds are honoured.
//
// Never: calls anything with side effects.
#include <string>
#include <string_view>

#include "services/filter-bridge/message/header_section.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sluice::filter_bridge;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  HeaderLimits limits;
  limits.max_bytes = 2048;
  limits.max_fields = 64;
  for (bool complete : {true, false}) {
    HeaderSection h = ParseHeaderSection(in, complete, limits);
    FUZZ_CHECK(h.end <= h.body_offset);
    FUZZ_CHECK(h.body_offset <= in.size());
    FUZZ_CHECK(h.fields.size() <= limits.max_fields);
    std::string joined;
    for (const HeaderField& f : h.fields) {
      FUZZ_CHECK(!f.name().empty());
      joined.append(f.raw());
    }
    FUZZ_CHECK(joined.size() == h.end);
    FUZZ_CHECK(in.substr(0, h.end) == joined);
    if (h.has_separator) FUZZ_CHECK(h.body_offset == h.end + 2 && in.substr(h.end, 2) == "\r\n");
  }
  return 0;
}
