"""MLflow "model from code" entry: this file is copied into every logged task model and run when it is loaded.

It names the model class only; the weights are the model's ``checkpoint`` artifact (``serving.pyfunc``).
"""

from mlflow.models import set_model

from xfm_pipeline.serving.pyfunc import XFMPythonModel

set_model(XFMPythonModel())
