def kernel_applies(config):
    return False
