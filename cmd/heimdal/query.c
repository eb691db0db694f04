int cmd_state_query(int argc, char **argv){(void)argc;(void)argv;return 0;}
