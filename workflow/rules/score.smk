# Per-sample scores, one job per (benchmark, method, OOD set, seed). What a job reads is what
# its method needs (ants.methods.METHODS): MCM and AdaNeg the features, NegLabel the shared
# static pass, ANTS the static pass, the stream's answers log and the text features of its
# negatives (replayed: each answer applied at the batch where an online run would have had
# it). ANTS score jobs also take what decides the answers (`answer` param: prompt, model,
# revision, generation settings, parser), so a change there re-runs them even if an answer
# job was interrupted and its output is gone.
# Runs ants.stages.score (`ants score`).


rule score:
    input:
        unpack(lambda w: ants_inputs(w) if is_ants(w.method) else scoring_inputs(w)),
    output:
        template("scores"),
    params:
        method=method_json,
        answer=lambda w: answer_json(w) if is_ants(w.method) else "",
        stream_id=stream_name,
        files=score_options,
    log:
        log_path("score", "scores"),
    benchmark:
        benchmark_path("score", "scores")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants score --stream {input.stream:q} {params.files} --method-json {params.method:q}"
        " --stream-id {params.stream_id:q} --out {output:q} > {log:q} 2>&1"
