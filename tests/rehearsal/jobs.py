"""The user code of the rehearsal's Functions (bundled with the SDK's own ``make_bundle``)."""


def double(x):  # type: ignore[no-untyped-def]
    return {"doubled": 2 * x}
