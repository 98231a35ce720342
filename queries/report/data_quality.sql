-- Data quality per agent, over its model spans (inference calls, or spans naming a model):
-- which GenAI convention spellings it sends (a span counts for each family whose keys it
-- carries; `current` are the spans with none of the others), and the share missing the
-- provider, the model or token counts.
WITH m AS (
  SELECT coalesce(agent, 'unknown') AS agent, provider, model, input_tokens, output_tokens,
         map_keys(attributes) AS keys
  FROM spans
  WHERE operation IN ('chat', 'text_completion', 'generate_content', 'embeddings') OR model IS NOT NULL
), f AS (
  SELECT agent, provider, model, input_tokens, output_tokens,
         array_has(keys, 'gen_ai.system') OR array_has(keys, 'gen_ai.usage.prompt_tokens')
           OR array_has(keys, 'gen_ai.usage.completion_tokens')
           OR array_has(keys, 'gen_ai.usage.cache_creation.input_tokens') AS deprecated,
         array_has(keys, 'openinference.span.kind') OR array_has(keys, 'llm.token_count.prompt')
           OR array_has(keys, 'llm.model_name') AS openinference,
         array_has(keys, 'traceloop.span.kind') OR array_has(keys, 'llm.usage.prompt_tokens')
           OR array_has(keys, 'traceloop.entity.name') AS openllmetry
  FROM m
)
SELECT agent,
       CAST(count(*) AS BIGINT) AS model_spans,
       CAST(sum(CASE WHEN deprecated OR openinference OR openllmetry THEN 0 ELSE 1 END) AS BIGINT) AS current,
       CAST(sum(CASE WHEN deprecated THEN 1 ELSE 0 END) AS BIGINT) AS deprecated,
       CAST(sum(CASE WHEN openinference THEN 1 ELSE 0 END) AS BIGINT) AS openinference,
       CAST(sum(CASE WHEN openllmetry THEN 1 ELSE 0 END) AS BIGINT) AS openllmetry,
       avg(CASE WHEN provider IS NULL THEN 1.0 ELSE 0.0 END) AS missing_provider,
       avg(CASE WHEN model IS NULL THEN 1.0 ELSE 0.0 END) AS missing_model,
       avg(CASE WHEN input_tokens IS NULL OR output_tokens IS NULL THEN 1.0 ELSE 0.0 END) AS missing_tokens
FROM f
GROUP BY agent
ORDER BY model_spans DESC, agent
