// lib/smtp/data_reader.cc -- see data_reader.h.
#include "lib/smtp/data_reader.h"
