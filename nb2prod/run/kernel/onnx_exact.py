"""Exact ONNX converters, registered with skl2onnx for the conversion: tree ensembles and imputers.

skl2onnx's own tree converters compare in float32 against float32 thresholds and sum leaves in
float32, so probabilities move by up to 1e-2 and labels can flip. scikit-learn casts the input
to float32 and compares it with float64 thresholds, then sums float64 leaf values. The graphs
here do exactly that: Cast to float, Cast back to double, ai.onnx.ml TreeEnsemble (opset 5) with
double thresholds and leaves, then the estimator's own post-processing in double.

skl2onnx's SimpleImputer uses the ai.onnx.ml Imputer, which onnxruntime has for float32 only;
in float64 the imputer here is IsNaN + Where, with the same statistics.

Runs inside the user's kernel (see the package docstring): standard library only, Python >= 3.9;
skl2onnx and onnx are imported by the functions that need them.
"""

ONNX_ML_OPSET = 5
# skl2onnx refuses ai.onnx.ml opset 5, so the node is written in a private domain and moved to
# ai.onnx.ml by `_finish_exact_trees` once skl2onnx is done.
_PLACEHOLDER_DOMAIN = "nb2prod.trees"
_FOREST_CLASSIFIERS = ("RandomForestClassifier", "ExtraTreesClassifier")
_FOREST_REGRESSORS = ("RandomForestRegressor", "ExtraTreesRegressor")
_TREE_CLASSIFIERS = ("DecisionTreeClassifier", "ExtraTreeClassifier")
_TREE_REGRESSORS = ("DecisionTreeRegressor", "ExtraTreeRegressor")
_BOOSTED = ("GradientBoostingClassifier", "GradientBoostingRegressor")
EXACT_TREE_MODELS = _FOREST_CLASSIFIERS + _FOREST_REGRESSORS + _TREE_CLASSIFIERS + _TREE_REGRESSORS + _BOOSTED


_ORIGINAL: dict = {}  # skl2onnx's own converters that ours hand over to


def _register_exact_converters():
    """Point skl2onnx at the converters below for every tree ensemble scikit-learn has, and imputers."""
    import sklearn.ensemble
    import sklearn.impute
    import sklearn.linear_model
    import sklearn.tree
    from skl2onnx import update_registered_converter
    from skl2onnx.common._registration import get_converter, get_shape_calculator

    if "imputer" not in _ORIGINAL:
        _ORIGINAL["imputer"] = get_converter("SklearnImputer")
        _ORIGINAL["imputer_shapes"] = get_shape_calculator("SklearnImputer")
    update_registered_converter(
        sklearn.impute.SimpleImputer, "SklearnImputer", _ORIGINAL["imputer_shapes"], _convert_imputer
    )
    update_registered_converter(
        sklearn.linear_model.LogisticRegression,
        "Nb2prodExactLogisticRegression",
        _classifier_shapes,
        _convert_logistic_regression,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False]},
    )

    for name in EXACT_TREE_MODELS:
        model_type = getattr(sklearn.ensemble, name, None) or getattr(sklearn.tree, name)
        classifier = name.endswith("Classifier")
        update_registered_converter(
            model_type,
            "Nb2prodExact" + name,
            _classifier_shapes if classifier else _regressor_shapes,
            _convert_tree_model,
            options={"zipmap": [True, False, "columns"], "nocl": [True, False]} if classifier else None,
        )


def _convert_imputer(scope, operator, container):
    """float64 with NaN as the missing value: fill from statistics_ exactly; anything else: skl2onnx's own."""
    import numpy as np
    from onnx import TensorProto
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.operator_converters.common import concatenate_variables

    model = operator.raw_operator
    statistics = np.asarray(model.statistics_)
    exact = (
        all(isinstance(v.type, DoubleTensorType) for v in operator.inputs)
        and _is_nan(model.missing_values)
        and statistics.dtype.kind == "f"
        and np.isfinite(statistics).all()
        and not getattr(model, "add_indicator", False)
    )
    if not exact:
        return _ORIGINAL["imputer"](scope, operator, container)
    values = (
        concatenate_variables(scope, operator.inputs, container)
        if len(operator.inputs) > 1
        else operator.inputs[0].full_name
    )
    fill, missing = scope.get_unique_variable_name("statistics"), scope.get_unique_variable_name("missing")
    container.add_initializer(fill, TensorProto.DOUBLE, [len(statistics)], [float(v) for v in statistics])
    container.add_node("IsNaN", values, missing)
    container.add_node("Where", [missing, fill, values], operator.outputs[0].full_name)
    return None


def _convert_logistic_regression(scope, operator, container):
    """decision = X @ coef.T + intercept; two classes: sigmoid and decision > 0; more: softmax and argmax.

    skl2onnx's graph for the same model runs several times slower for one row. One-vs-rest with more
    than two classes (normalised sigmoids) is not written here: the conversion then falls back.
    """
    import numpy as np
    from onnx import TensorProto

    model = operator.raw_operator
    coef = np.asarray(model.coef_, dtype="float64")
    classes = model.classes_
    if len(classes) > 2 and (getattr(model, "multi_class", "auto") == "ovr" or model.solver == "liblinear"):
        raise NotImplementedError("LogisticRegression one-vs-rest with more than two classes")
    name = scope.get_unique_variable_name
    values = operator.inputs[0].full_name
    if operator.inputs[0].type.__class__.__name__ != "DoubleTensorType":
        widened = name("widened")
        container.add_node("Cast", values, widened, to=TensorProto.DOUBLE)
        values = widened
    weights, bias, product, decision = name("coef"), name("intercept"), name("product"), name("decision")
    container.add_initializer(weights, TensorProto.DOUBLE, list(coef.T.shape), coef.T.ravel().tolist())
    container.add_initializer(bias, TensorProto.DOUBLE, [coef.shape[0]], np.asarray(model.intercept_).tolist())
    container.add_node("MatMul", [values, weights], product)
    container.add_node("Add", [product, bias], decision)
    if len(classes) > 2:
        container.add_node("Softmax", decision, operator.outputs[1].full_name, axis=1)
        _label_from_scores(scope, container, operator, decision, classes)
        return
    positive, one, negative = name("positive"), name("one"), name("negative")
    container.add_node("Sigmoid", decision, positive)
    container.add_initializer(one, TensorProto.DOUBLE, [1], [1.0])
    container.add_node("Sub", [one, positive], negative)
    container.add_node("Concat", [negative, positive], operator.outputs[1].full_name, axis=1)
    zero, above, index = name("zero"), name("above"), name("index")
    container.add_initializer(zero, TensorProto.DOUBLE, [1], [0.0])
    container.add_node("Greater", [decision, zero], above)
    container.add_node("Cast", above, index, to=TensorProto.INT64)
    _gather_label(scope, container, operator, _squeeze_column(scope, container, index), classes)


def _is_nan(value):
    return isinstance(value, float) and value != value


def _finish_exact_trees(onnx_model):
    """Move the placeholder nodes to ai.onnx.ml and import that domain at opset 5."""
    moved = False
    for node in onnx_model.graph.node:
        if node.domain == _PLACEHOLDER_DOMAIN:
            node.domain = "ai.onnx.ml"
            moved = True
    if not moved:
        return onnx_model
    kept = [o for o in onnx_model.opset_import if o.domain not in (_PLACEHOLDER_DOMAIN, "ai.onnx.ml")]
    del onnx_model.opset_import[:]
    onnx_model.opset_import.extend(kept)
    onnx_model.opset_import.add(domain="ai.onnx.ml", version=ONNX_ML_OPSET)
    return onnx_model


def _classifier_shapes(operator):
    from skl2onnx.common.data_types import DoubleTensorType, Int64TensorType, StringTensorType

    rows = operator.inputs[0].get_first_dimension()
    classes = operator.raw_operator.classes_
    string_labels = all(isinstance(c, str) for c in classes)
    operator.outputs[0].type = (StringTensorType if string_labels else Int64TensorType)([rows])
    operator.outputs[1].type = DoubleTensorType([rows, len(classes)])


def _regressor_shapes(operator):
    from skl2onnx.common.data_types import DoubleTensorType

    operator.outputs[0].type = DoubleTensorType([operator.inputs[0].get_first_dimension(), 1])


def _tree_parts(model):
    """(kind, [(tree, target, leaf weight function)], number of targets, constant to add, divisor)."""
    import numpy as np

    name = type(model).__name__
    if getattr(model, "n_outputs_", 1) != 1:
        raise NotImplementedError(f"{name} with several outputs")
    if name in _BOOSTED:
        return _boosted_parts(model, np)
    trees = list(model.estimators_) if name in _FOREST_CLASSIFIERS + _FOREST_REGRESSORS else [model]
    if name.endswith("Classifier"):
        weight = _class_fractions
        parts = [(t.tree_, k, weight) for t in trees for k in range(len(model.classes_))]
        return "classifier", parts, len(model.classes_), None, float(len(trees))
    parts = [(t.tree_, 0, _leaf_value) for t in trees]
    return "regressor", parts, 1, None, float(len(trees))


def _boosted_parts(model, np):
    init = model.init_
    if not (init == "zero" or type(init).__name__ in ("DummyClassifier", "DummyRegressor")):
        raise NotImplementedError(f"{type(model).__name__} with init={type(init).__name__}")
    width = model.estimators_.shape[1]
    probe = np.zeros((1, model.n_features_in_))
    base = [float(v) for v in np.asarray(model._raw_predict_init(probe), dtype="float64").ravel()]
    rate = float(model.learning_rate)

    def scaled(tree, node, target):
        return rate * float(tree.value[node][0][0])

    parts = [
        (model.estimators_[i, k].tree_, k, scaled) for i in range(model.estimators_.shape[0]) for k in range(width)
    ]
    kind = "boosted_classifier" if hasattr(model, "classes_") else "boosted_regressor"
    return kind, parts, width, base, None


def _class_fractions(tree, node, target):
    values = tree.value[node][0]
    return float((values / values.sum())[target])


def _leaf_value(tree, node, target):
    return float(tree.value[node][0][0])


def _ensemble_attributes(parts, targets):
    """The TreeEnsemble (ai.onnx.ml opset 5) attributes: one ONNX tree per (tree, target) pair."""
    import numpy as np
    from onnx import numpy_helper

    columns = {key: [] for key in ("roots", "feature", "split", "true", "true_leaf", "false", "false_leaf", "missing")}
    leaf_targets, leaf_weights = [], []
    for tree, target, weight in parts:
        leaves = [n for n in range(tree.node_count) if tree.children_left[n] == -1]
        leaf_index = {n: len(leaf_targets) + i for i, n in enumerate(leaves)}
        for n in leaves:
            leaf_targets.append(target)
            leaf_weights.append(weight(tree, n, target))
        _add_interior_nodes(columns, tree, leaf_index)
    return {
        "tree_roots": columns["roots"],
        "nodes_featureids": columns["feature"],
        "nodes_splits": numpy_helper.from_array(np.array(columns["split"], dtype="float64")),
        "nodes_modes": numpy_helper.from_array(np.zeros(len(columns["split"]), dtype="uint8")),  # BRANCH_LEQ
        "nodes_truenodeids": columns["true"],
        "nodes_trueleafs": columns["true_leaf"],
        "nodes_falsenodeids": columns["false"],
        "nodes_falseleafs": columns["false_leaf"],
        "nodes_missing_value_tracks_true": columns["missing"],
        "leaf_targetids": leaf_targets,
        "leaf_weights": numpy_helper.from_array(np.array(leaf_weights, dtype="float64")),
        "n_targets": targets,
        "aggregate_function": 1,  # SUM
        "post_transform": 0,  # NONE
    }


def _add_interior_nodes(columns, tree, leaf_index):
    interior = [n for n in range(tree.node_count) if tree.children_left[n] != -1]
    if not interior:  # a one-leaf tree: one split whose both sides reach that leaf
        columns["roots"].append(len(columns["split"]))
        for key, value in (("feature", 0), ("split", 0.0), ("missing", 0)):
            columns[key].append(value)
        for side in ("true", "false"):
            columns[side].append(leaf_index[0])
            columns[side + "_leaf"].append(1)
        return
    node_index = {n: len(columns["split"]) + i for i, n in enumerate(interior)}
    columns["roots"].append(node_index[0])
    missing_left = getattr(tree, "missing_go_to_left", None)
    for n in interior:
        columns["feature"].append(int(tree.feature[n]))
        columns["split"].append(float(tree.threshold[n]))
        columns["missing"].append(int(missing_left[n]) if missing_left is not None else 0)
        for side, child in (("true", tree.children_left[n]), ("false", tree.children_right[n])):
            is_leaf = child not in node_index
            columns[side].append(leaf_index[child] if is_leaf else node_index[child])
            columns[side + "_leaf"].append(1 if is_leaf else 0)


def _convert_tree_model(scope, operator, container):
    """skl2onnx converter: float32 rounding of the input, then the exact ensemble, then the estimator's output."""
    from onnx import TensorProto

    model = operator.raw_operator
    kind, parts, targets, base, divisor = _tree_parts(model)
    name = scope.get_unique_variable_name
    rounded, widened, summed = name("rounded"), name("widened"), name("tree_sum")
    container.add_node("Cast", operator.inputs[0].full_name, rounded, to=TensorProto.FLOAT)
    container.add_node("Cast", rounded, widened, to=TensorProto.DOUBLE)
    container.add_node(
        "TreeEnsemble",
        widened,
        summed,
        op_domain=_PLACEHOLDER_DOMAIN,
        op_version=1,
        **_ensemble_attributes(parts, targets),
    )
    raw = _add_constant(scope, container, summed, base, divisor)
    if kind in ("regressor", "boosted_regressor"):
        container.add_node("Identity", raw, operator.outputs[0].full_name)
    elif kind == "classifier":
        container.add_node("Identity", raw, operator.outputs[1].full_name)
        _label_from_scores(scope, container, operator, raw, model.classes_)
    else:
        _boosted_outputs(scope, container, operator, raw, model.classes_)


def _add_constant(scope, container, summed, base, divisor):
    from onnx import TensorProto

    if divisor is not None:
        count = scope.get_unique_variable_name("tree_count")
        container.add_initializer(count, TensorProto.DOUBLE, [1], [divisor])
        mean = scope.get_unique_variable_name("tree_mean")
        container.add_node("Div", [summed, count], mean)
        return mean
    if base is not None:
        start = scope.get_unique_variable_name("init_raw")
        container.add_initializer(start, TensorProto.DOUBLE, [len(base)], base)
        total = scope.get_unique_variable_name("raw_prediction")
        container.add_node("Add", [summed, start], total)
        return total
    return summed


def _boosted_outputs(scope, container, operator, raw, classes):
    """Binary: p = sigmoid(raw), label = raw >= 0. Several classes: softmax(raw), label = argmax(raw)."""
    from onnx import TensorProto

    name = scope.get_unique_variable_name
    if len(classes) > 2:
        container.add_node("Softmax", raw, operator.outputs[1].full_name, axis=1)
        _label_from_scores(scope, container, operator, raw, classes)
        return
    positive, one, negative = name("positive"), name("one"), name("negative")
    container.add_node("Sigmoid", raw, positive)
    container.add_initializer(one, TensorProto.DOUBLE, [1], [1.0])
    container.add_node("Sub", [one, positive], negative)
    container.add_node("Concat", [negative, positive], operator.outputs[1].full_name, axis=1)
    zero, above, index = name("zero"), name("above"), name("index")
    container.add_initializer(zero, TensorProto.DOUBLE, [1], [0.0])
    container.add_node("GreaterOrEqual", [raw, zero], above)
    container.add_node("Cast", above, index, to=TensorProto.INT64)
    _gather_label(scope, container, operator, _squeeze_column(scope, container, index), classes)


def _squeeze_column(scope, container, column):
    from onnx import TensorProto

    axes = scope.get_unique_variable_name("axes")
    container.add_initializer(axes, TensorProto.INT64, [1], [1])
    flat = scope.get_unique_variable_name("flat_index")
    container.add_node("Squeeze", [column, axes], flat)
    return flat


def _label_from_scores(scope, container, operator, scores, classes):
    index = scope.get_unique_variable_name("argmax")
    container.add_node("ArgMax", scores, index, axis=1, keepdims=0)
    _gather_label(scope, container, operator, index, classes)


def _gather_label(scope, container, operator, index, classes):
    """The class label at each index, as skl2onnx writes labels: text, or integers."""
    from onnx import TensorProto

    table = scope.get_unique_variable_name("classes")
    if all(isinstance(c, str) for c in classes):
        container.add_initializer(table, TensorProto.STRING, [len(classes)], [str(c).encode() for c in classes])
    else:
        container.add_initializer(table, TensorProto.INT64, [len(classes)], [int(c) for c in classes])
    container.add_node("Gather", [table, index], operator.outputs[0].full_name, axis=0)
