"""Where results go besides the results directory, as lm-eval users send them: Weights &
Biases (`--wandb_args`, through lm-eval's own WandbLogger: our results have its layout) and a
Hugging Face Hub dataset (`--hf_hub_log_args`, with lm-eval's argument names and repo naming).
Each runs after the results are written, so a sink that fails loses nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cram_harness.errors import CramError
from cram_harness.integrations.lm_eval.spellings import is_true, parse_key_values

HUB_KEYS = ("hub_results_org", "details_repo_name", "results_repo_name", "push_results_to_hub",
            "push_samples_to_hub", "public_repo", "token")


@dataclass
class Sinks:
    wandb: dict = field(default_factory=dict)  # wandb.init's arguments
    hub: dict = field(default_factory=dict)  # lm-eval's --hf_hub_log_args

    @classmethod
    def from_args(cls, wandb_args: str | None, hub_args: str | None) -> Sinks:
        hub = parse_key_values(hub_args, "--hf_hub_log_args", known=HUB_KEYS)
        wandb = parse_key_values(wandb_args, "--wandb_args")
        if wandb:
            try:
                import wandb as _  # noqa: F401
            except ImportError:
                raise CramError("--wandb_args needs Weights & Biases: `pip install wandb` "
                                "(or cram-harness[wandb])") from None
        return cls(wandb=wandb, hub=hub)

    def send(self, results: list[dict]) -> list[str]:
        """Send each model's results; returns what to tell the user, a line each."""
        lines = []
        for res in results:
            if self.wandb:
                lines.append(log_to_wandb(res, self.wandb))
            if self.hub and (is_true(self.hub.get("push_results_to_hub"))
                             or is_true(self.hub.get("push_samples_to_hub"))):
                lines.append(push_to_hub(res, self.hub))
        return lines


def log_to_wandb(results: dict, init_args: dict) -> str:
    """One W&B run per model: the metrics as its summary, Table 1 and the task configs, as
    lm-eval logs its own results (WANDB_MODE=offline keeps the run on disk)."""
    from lm_eval.loggers import WandbLogger

    logger = WandbLogger(init_args={"name": results.get("model_name"), **init_args},
                         config_args={"cram_harness": results.get("engine", {})})
    logger.post_init(results)
    logger.log_eval_result()
    run = logger.run
    where = run.dir if getattr(run, "offline", False) else (run.url or run.dir)
    run.finish()
    return f"wandb: {where}"


def push_to_hub(results: dict, args: dict) -> str:
    """The results file (and, with push_samples_to_hub, the samples files) into the Hub
    dataset `<hub_results_org>/<results_repo_name>` ("-private" unless public_repo), under
    the model's name, as lm-eval's EvaluationTracker names them."""
    from huggingface_hub import HfApi

    from cram_harness.errors import is_unreachable

    path = Path(results["results_file"])
    api = HfApi(token=args.get("token") or None)
    try:
        org = args.get("hub_results_org") or api.whoami()["name"]
        name = args.get("results_repo_name") or args.get("details_repo_name") or "cram-results"
        public = is_true(args.get("public_repo"))
        repo = f"{org}/{name}" if public else f"{org}/{name}-private"
        api.create_repo(repo, repo_type="dataset", private=not public, exist_ok=True)
        files = [path] if is_true(args.get("push_results_to_hub")) else []
        if is_true(args.get("push_samples_to_hub")):
            stamp = path.stem.removeprefix("results_")
            files += sorted(path.parent.glob(f"samples_*_{stamp}.jsonl"))
        model = str(results.get("model_name", "model")).replace("/", "__")
        for file in files:
            api.upload_file(path_or_fileobj=str(file), path_in_repo=f"{model}/{file.name}",
                            repo_id=repo, repo_type="dataset",
                            commit_message=f"cram-harness results for {model}")
    except Exception as exc:
        if is_unreachable(exc) or isinstance(exc, (ValueError, KeyError)):
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CramError(f"could not push the results to the Hub ({first}): they are in "
                            f"{path}; rerun with network and `hf auth login` to push them") \
                from exc
        raise
    return f"hub: {repo} ({len(files)} file{'s' if len(files) != 1 else ''})"
