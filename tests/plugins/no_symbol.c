/* A shared object without the morph_plugin descriptor. */
int not_a_morph_plugin(void);
int not_a_morph_plugin(void) { return 42; }
