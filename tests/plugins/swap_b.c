/* Version B of the plugin "swap": prefixes "B:". */
#define SWAP_TAG 'B'
#include "swap_a.c"
