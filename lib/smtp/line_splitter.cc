// lib/smtp/line_splitter.cc -- see line_splitter.h.
#include "lib/smtp/line_splitter.h"
