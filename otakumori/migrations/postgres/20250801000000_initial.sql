-- Otakumori example app: PostgreSQL schema (spec §9, plus outbox/dedupe/report tables).
-- Keep in step with migrations/sqlite/20250801000000_initial.sql (same tables and columns,
-- PostgreSQL types: uuid, timestamptz, text[], jsonb, bigserial).

CREATE TABLE users (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  clerk_id      text NOT NULL UNIQUE,
  email         text NOT NULL,
  username      text UNIQUE,
  display_name  text,
  avatar_url    text,
  visibility    text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public','private')),
  deleted_at    timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  printify_product_id text UNIQUE,
  shop_id             text,
  title               text NOT NULL,
  description         text,
  category_slug       text,
  tags                text[] NOT NULL DEFAULT '{}',
  primary_image_url   text,
  blueprint_id        integer,
  print_provider_id   integer,
  active              boolean NOT NULL DEFAULT true,
  visible             boolean NOT NULL DEFAULT true,
  deactivated_by      text CHECK (deactivated_by IN ('admin','sync')),
  last_synced_at      timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE product_variants (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  product_id          uuid NOT NULL REFERENCES products(id) ON DELETE CASCADE,
  printify_variant_id bigint NOT NULL,
  sku                 text,
  title               text,
  price_cents         bigint,
  cost_cents          bigint,
  grams               integer,
  is_enabled          boolean NOT NULL DEFAULT true,
  in_stock            boolean NOT NULL DEFAULT true,
  is_default          boolean NOT NULL DEFAULT false,
  option_values       jsonb,
  preview_image_url   text,
  last_synced_at      timestamptz,
  UNIQUE (product_id, printify_variant_id)
);

CREATE TABLE product_images (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  product_id  uuid NOT NULL REFERENCES products(id) ON DELETE CASCADE,
  url         text NOT NULL,
  position    text,
  variant_ids jsonb NOT NULL DEFAULT '[]',
  is_default  boolean NOT NULL DEFAULT false,
  UNIQUE (product_id, url)
);

CREATE TABLE inventory_alerts (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  variant_id  uuid NOT NULL REFERENCES product_variants(id) ON DELETE CASCADE,
  kind        text NOT NULL DEFAULT 'out_of_stock',
  created_at  timestamptz NOT NULL DEFAULT now(),
  resolved_at timestamptz,
  notified_at timestamptz
);
CREATE UNIQUE INDEX inventory_alerts_one_open ON inventory_alerts (variant_id, kind) WHERE resolved_at IS NULL;

CREATE TABLE carts (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id    uuid NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE cart_items (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  cart_id    uuid NOT NULL REFERENCES carts(id) ON DELETE CASCADE,
  variant_id uuid NOT NULL REFERENCES product_variants(id),
  quantity   integer NOT NULL CHECK (quantity > 0),
  UNIQUE (cart_id, variant_id)
);

CREATE TABLE orders (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  display_number    bigserial UNIQUE,
  user_id           uuid NOT NULL REFERENCES users(id),
  stripe_session_id text UNIQUE,
  payment_intent_id text,
  status            text NOT NULL DEFAULT 'pending' CHECK (status IN
                    ('pending','paid','payment_failed','pending_mapping','in_production','shipped','delivered','cancelled')),
  subtotal_cents    bigint NOT NULL DEFAULT 0 CHECK (subtotal_cents >= 0),
  total_cents       bigint NOT NULL DEFAULT 0 CHECK (total_cents >= 0),
  currency          text NOT NULL DEFAULT 'USD',
  ship_name text, ship_email text, ship_phone text, ship_line1 text, ship_line2 text,
  ship_city text, ship_region text, ship_postal_code text, ship_country text,
  printify_order_id text,
  tracking_number   text,
  tracking_url      text,
  paid_at           timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_payment_intent ON orders (payment_intent_id);
CREATE INDEX orders_printify_order ON orders (printify_order_id);

CREATE TABLE order_items (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  order_id            uuid NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
  variant_id          uuid REFERENCES product_variants(id) ON DELETE SET NULL,
  printify_product_id text,
  printify_variant_id bigint,
  name                text NOT NULL,
  sku                 text,
  quantity            integer NOT NULL CHECK (quantity > 0),
  unit_amount_cents   bigint NOT NULL CHECK (unit_amount_cents >= 0)
);

CREATE TABLE printify_order_sync (
  order_id          uuid PRIMARY KEY REFERENCES orders(id) ON DELETE CASCADE,
  printify_order_id text,
  status            text NOT NULL CHECK (status IN ('synced','failed','mapping_failed')),
  error             varchar(500),
  last_sync_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE email_log (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  idempotency_key     text,
  user_id             uuid REFERENCES users(id) ON DELETE SET NULL,
  order_id            uuid REFERENCES orders(id) ON DELETE SET NULL,
  to_address          text NOT NULL,
  provider            text NOT NULL,
  template            text NOT NULL,
  subject             text,
  status              text NOT NULL CHECK (status IN ('sent','failed')),
  provider_message_id text,
  error               text,
  sent_at             timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX email_log_once ON email_log (order_id, template) WHERE status = 'sent' AND order_id IS NOT NULL;
CREATE UNIQUE INDEX email_log_key_once ON email_log (idempotency_key) WHERE status = 'sent' AND idempotency_key IS NOT NULL;

-- Local "log" email provider: the message itself, never sent over the network.
CREATE TABLE email_outbox (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  idempotency_key text NOT NULL UNIQUE,
  from_address    text NOT NULL,
  to_addresses    jsonb NOT NULL,
  subject         text NOT NULL,
  html            text,
  text_body       text,
  created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_events (
  source       text NOT NULL CHECK (source IN ('stripe','clerk','printify')),
  id           text NOT NULL,
  type         text NOT NULL,
  payload      jsonb NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now(),
  processed_at timestamptz,
  PRIMARY KEY (source, id)
);

CREATE TABLE failed_operations (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  type          text NOT NULL,
  dedupe_key    text,
  payload       jsonb NOT NULL,
  retry_count   integer NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
  last_error    text,
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','retrying','succeeded','dead')),
  next_retry_at timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (type, dedupe_key)
);
CREATE INDEX failed_operations_due ON failed_operations (status, next_retry_at);

-- Monthly archive: same columns as orders/order_items plus archived_at (no FKs, no uniques).
CREATE TABLE orders_archive (
  id                uuid PRIMARY KEY,
  display_number    bigint,
  user_id           uuid NOT NULL,
  stripe_session_id text,
  payment_intent_id text,
  status            text NOT NULL,
  subtotal_cents    bigint NOT NULL,
  total_cents       bigint NOT NULL,
  currency          text NOT NULL,
  ship_name text, ship_email text, ship_phone text, ship_line1 text, ship_line2 text,
  ship_city text, ship_region text, ship_postal_code text, ship_country text,
  printify_order_id text,
  tracking_number   text,
  tracking_url      text,
  paid_at           timestamptz,
  created_at        timestamptz NOT NULL,
  updated_at        timestamptz NOT NULL,
  archived_at       timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE order_items_archive (
  id                  uuid PRIMARY KEY,
  order_id            uuid NOT NULL,
  variant_id          uuid,
  printify_product_id text,
  printify_variant_id bigint,
  name                text NOT NULL,
  sku                 text,
  quantity            integer NOT NULL,
  unit_amount_cents   bigint NOT NULL,
  archived_at         timestamptz NOT NULL DEFAULT now()
);

-- Monthly audit reports (and any other maintenance summaries).
CREATE TABLE maintenance_reports (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  kind       text NOT NULL,
  report     jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
