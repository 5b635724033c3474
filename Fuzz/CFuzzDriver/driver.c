// The declaration in include/CFuzzDriver.h is all there is: libFuzzer (-sanitize=fuzzer) defines it.
#include "CFuzzDriver.h"
