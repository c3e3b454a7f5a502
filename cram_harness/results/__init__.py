"""What a run leaves on disk: the results file in lm-eval's layout (`build`) and the
files, locks and atomic writes that hold it (`files`)."""
