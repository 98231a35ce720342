-- Data quality per agent, over its model spans (inference calls, or spans naming a model):
-- which GenAI convention spellings it sends (`genai_spellings`, from the span's keys at
-- ingest: a span counts for each other spelling it carries; `current` are the spans with
-- none of them), and the share missing the provider, the model or token counts.
SELECT coalesce(agent, 'unknown') AS agent,
       CAST(count(*) AS BIGINT) AS model_spans,
       CAST(sum(CASE WHEN genai_spellings IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS current,
       CAST(sum(CASE WHEN genai_spellings LIKE '%deprecated%' THEN 1 ELSE 0 END) AS BIGINT) AS deprecated,
       CAST(sum(CASE WHEN genai_spellings LIKE '%openinference%' THEN 1 ELSE 0 END) AS BIGINT) AS openinference,
       CAST(sum(CASE WHEN genai_spellings LIKE '%openllmetry%' THEN 1 ELSE 0 END) AS BIGINT) AS openllmetry,
       avg(CASE WHEN provider IS NULL THEN 1.0 ELSE 0.0 END) AS missing_provider,
       avg(CASE WHEN model IS NULL THEN 1.0 ELSE 0.0 END) AS missing_model,
       avg(CASE WHEN input_tokens IS NULL OR output_tokens IS NULL THEN 1.0 ELSE 0.0 END) AS missing_tokens
FROM spans
WHERE operation IN ('chat', 'text_completion', 'generate_content', 'embeddings') OR model IS NOT NULL
GROUP BY 1
ORDER BY model_spans DESC, agent
