"""scikit-learn's estimator conformance checks over the public estimators."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from mtl_hybrid import MultiTaskClassifier, SentenceEncoder, TunedXGBoostHead, XGBoostHead

# These checks fit SentenceEncoder on numeric arrays, which a text encoder rejects
# with a ValueError by design, so they cannot apply to it.
NUMERIC_INPUT_CHECKS = [
    "check_complex_data",
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimators_dtypes",
    "check_estimators_empty_data_messages",
    "check_estimators_fit_returns_self",
    "check_estimators_nan_inf",
    "check_estimators_overwrite_params",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1feature",
    "check_fit2d_1sample",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_pipeline_consistency",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
    "check_transformer_data_not_an_array",
    "check_transformer_general",
]

# Row subsampling (subsample < 1) and the early-stopping split draw rows, so a
# weight of 2 is not the same as a repeated row.
SAMPLE_WEIGHT_CHECKS = [
    "check_sample_weight_equivalence_on_dense_data",
    "check_sample_weight_equivalence_on_sparse_data",
]


def expected_failed_checks(estimator):
    if isinstance(estimator, SentenceEncoder):
        return {name: "numeric input; SentenceEncoder accepts only texts" for name in NUMERIC_INPUT_CHECKS}
    if isinstance(estimator, XGBoostHead):
        return {name: "row subsampling and the validation split are not weight-equivalent" for name in SAMPLE_WEIGHT_CHECKS}
    return {}


@parametrize_with_checks(
    [
        XGBoostHead(n_estimators=30),
        TunedXGBoostHead(XGBoostHead(n_estimators=30), n_trials=2, cv=2),
        MultiTaskClassifier(XGBoostHead(n_estimators=30)),
        SentenceEncoder(),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
