"""Nearest-neighbour upsampling shared by the necks."""
from keras import ops


def upsample_nearest(x, factor):
    """Each pixel repeated factor x factor times (PyTorch / Paddle 'nearest' for integer factors).

    One broadcast and free reshapes. Unlike ops.repeat it keeps the channel count static, which
    converters such as TFLite need when H and W are dynamic.
    """
    if factor == 1:
        return x
    n, h, w = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2]
    channels = x.shape[-1]
    x = ops.reshape(x, (n, h, 1, w, 1, channels))
    tiles = ops.broadcast_to(x, (n, h, factor, w, factor, channels))
    return ops.reshape(tiles, (n, h * factor, w * factor, channels))
