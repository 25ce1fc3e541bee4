"""The one exception type of `i2dl_keras.data`."""


class DataError(ValueError):
    """Bad input to a data source or pipeline: a missing file, an unknown format, a corrupt image.

    The message names the file, field or flag at fault and says what was expected, so an app can
    print it as is. It subclasses `ValueError` so callers that already catch `ValueError` keep
    working.
    """
