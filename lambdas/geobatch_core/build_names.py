"""Names the image build and its caller share: the CodeBuild project's environment variables and
the build statuses that end a build.

The CodeBuild adapter (``adapters/codebuild.py``) sets these variables when it starts a build; the
buildspec and the event rule in ``stacks/image_build.py`` read them. A pure module, so the stack
imports names without importing a runtime adapter (or botocore).
"""

VAR_IMAGE_TAG = "GEOBATCH_IMAGE_TAG"
VAR_REQUIREMENTS = "GEOBATCH_REQUIREMENTS_B64"
VAR_FUNCTION_ID = "GEOBATCH_FUNCTION_ID"
VAR_PYTHON = "GEOBATCH_PYTHON"
VAR_BUNDLE_KEY = "GEOBATCH_BUNDLE_KEY"
TERMINAL_BUILD_STATUSES = ("SUCCEEDED", "FAILED", "STOPPED", "FAULT", "TIMED_OUT")
