// The open-flow accelerator as a Wishbone peripheral (32-bit, classic
// cycles, word addresses as LiteX uses them): a register slave the CPU
// programs, and a DMA master that streams a job's packed weight groups from
// memory (SDRAM in the SoC) through gdot_mac.
//
// Why a bus peripheral with DMA and not a CFU: a matvec reads every weight
// byte once, so the weights should go from SDRAM to the MACs without the
// CPU touching them; through a CFU each 32-bit word costs a CPU load plus a
// custom instruction (>= 2 CPU cycles per word, plus cache misses the CPU
// stalls on), here the CPU only writes the activations once per matvec and
// reads two words per group back.
//
// Slave map (word offsets in the peripheral's window; byte offset = 4x):
//   0x000-0x3FF  activations, write only: word w = int8 codes 4w..4w+3
//   0x400 CTRL   write bit 0 = start; read STATUS: bit 0 busy, bit 1 done,
//                bit 2 bus error, bits 7:4 argument error (1 bits, 2 group,
//                3 n_groups, 4 row too long for the activation buffer,
//                5 weight address not 4-byte aligned)
//   0x401 W_ADDR byte address of the first group's header
//   0x402 BITS   2, 4 or 8
//   0x403 GROUP  32, 64, 128 or 256
//   0x404 NGROUP groups in the job, 1..RES_DEPTH (consecutive in memory)
//   0x405 RGROUP groups per row (the activation group index wraps there)
//   0x406 CYCLES clock cycles of the last job, start to done
//   0x407 PARAMS read only: MAX_COLS (bits 15:0), RES_DEPTH (bits 31:16)
//   0x800 + 2i   result i: the group's header word (f16 scale | f16 min << 16)
//   0x801 + 2i   result i: the exact int32 group sum
module gdot_wb #(
    parameter MAX_COLS = 4096,      // activation buffer bytes (multiple of 16)
    parameter RES_DEPTH = 512       // result entries, a power of two <= 1024
) (
    input wire clk,
    input wire rst,
    // Register slave.
    input wire [29:0] s_adr,
    input wire [31:0] s_dat_w,
    output reg [31:0] s_dat_r,
    input wire [3:0] s_sel,
    input wire s_cyc,
    input wire s_stb,
    output reg s_ack,
    input wire s_we,
    output wire s_err,
    // DMA master (reads only).
    output reg [29:0] m_adr,
    output wire [31:0] m_dat_w,
    input wire [31:0] m_dat_r,
    output wire [3:0] m_sel,
    output reg m_cyc,
    output reg m_stb,
    input wire m_ack,
    output wire m_we,
    input wire m_err,
    output wire [2:0] m_cti,
    output wire [1:0] m_bte,
    output wire irq                 // high while done (level)
);
  localparam AW = $clog2(MAX_COLS / 16);
  localparam RW = $clog2(RES_DEPTH);

  assign s_err = 1'b0;
  assign m_dat_w = 32'd0;
  assign m_sel = 4'hf;
  assign m_we = 1'b0;
  assign m_cti = 3'd0;
  assign m_bte = 2'd0;

  // ---- registers
  reg [31:0] w_addr;
  reg [3:0] bits;
  reg [8:0] group;
  reg [15:0] n_groups, row_groups;
  reg [31:0] cycles;
  reg busy, done, bus_err;
  reg [3:0] arg_err;
  assign irq = done;

  // ---- activation buffer: four 32-bit lanes of MAX_COLS/16 entries.
  reg [31:0] act0 [0:MAX_COLS/16-1];
  reg [31:0] act1 [0:MAX_COLS/16-1];
  reg [31:0] act2 [0:MAX_COLS/16-1];
  reg [31:0] act3 [0:MAX_COLS/16-1];

  // ---- result buffer
  reg [31:0] res_head [0:RES_DEPTH-1];
  reg [31:0] res_sum [0:RES_DEPTH-1];
  reg [RW:0] res_count;

  // ---- slave
  wire [11:0] sa = s_adr[11:0];
  wire s_req = s_cyc && s_stb && !s_ack;
  reg [1:0] s_phase;
  reg [31:0] rd_head, rd_sum;
  always @(posedge clk) begin
    rd_head <= res_head[sa[RW:1]];
    rd_sum <= res_sum[sa[RW:1]];
  end
  wire act_we = s_req && s_we && sa < 12'h400;
  always @(posedge clk) begin
    if (act_we && sa[1:0] == 2'd0) act0[sa[AW+1:2]] <= s_dat_w;
    if (act_we && sa[1:0] == 2'd1) act1[sa[AW+1:2]] <= s_dat_w;
    if (act_we && sa[1:0] == 2'd2) act2[sa[AW+1:2]] <= s_dat_w;
    if (act_we && sa[1:0] == 2'd3) act3[sa[AW+1:2]] <= s_dat_w;
  end

  // Argument check at start (0 = ok); group is a power of two there.
  reg [3:0] check;
  reg [24:0] row_cols;
  always @(*) begin
    case (group)
      9'd32: row_cols = {4'd0, row_groups, 5'd0};
      9'd64: row_cols = {3'd0, row_groups, 6'd0};
      9'd128: row_cols = {2'd0, row_groups, 7'd0};
      default: row_cols = {1'd0, row_groups, 8'd0};
    endcase
  end
  always @(*) begin
    check = 4'd0;
    if (bits != 4'd2 && bits != 4'd4 && bits != 4'd8) check = 4'd1;
    else if (group != 9'd32 && group != 9'd64 && group != 9'd128 && group != 9'd256) check = 4'd2;
    else if (n_groups == 16'd0 || n_groups > RES_DEPTH) check = 4'd3;
    else if (row_groups == 16'd0 || row_cols > MAX_COLS) check = 4'd4;
    else if (w_addr[1:0] != 2'd0) check = 4'd5;
  end
  wire start = s_req && s_we && sa == 12'h400 && s_dat_w[0] && !busy;

  always @(posedge clk) begin
    s_ack <= 1'b0;
    if (rst) begin
      s_phase <= 2'd0;
      w_addr <= 32'd0; bits <= 4'd2; group <= 9'd32; n_groups <= 16'd1; row_groups <= 16'd1;
    end else if (s_req) begin
      if (s_we) begin
        case (sa)
          12'h401: if (!busy) w_addr <= s_dat_w;
          12'h402: if (!busy) bits <= s_dat_w[3:0];
          12'h403: if (!busy) group <= s_dat_w[8:0];
          12'h404: if (!busy) n_groups <= s_dat_w[15:0];
          12'h405: if (!busy) row_groups <= s_dat_w[15:0];
          default: ;
        endcase
        s_ack <= 1'b1;
      end else if (s_phase != 2'd2) begin
        // Two cycles: the result memories' registered read, then the mux.
        s_phase <= s_phase + 2'd1;
      end else begin
        s_phase <= 2'd0;
        s_ack <= 1'b1;
        if (sa >= 12'h800) s_dat_r <= sa[0] ? rd_sum : rd_head;
        else case (sa)
          12'h400: s_dat_r <= {24'd0, arg_err, 1'b0, bus_err, done, busy};
          12'h401: s_dat_r <= w_addr;
          12'h402: s_dat_r <= {28'd0, bits};
          12'h403: s_dat_r <= {23'd0, group};
          12'h404: s_dat_r <= {16'd0, n_groups};
          12'h405: s_dat_r <= {16'd0, row_groups};
          12'h406: s_dat_r <= cycles;
          12'h407: s_dat_r <= {RES_DEPTH[15:0], MAX_COLS[15:0]};
          default: s_dat_r <= 32'd0;
        endcase
      end
    end
  end

  // ---- DMA: one outstanding classic read; the next address is presented
  // in the cycle after an ack with the strobe kept high.
  reg [1:0] mode;              // 0 W2, 1 W4, 2 W8
  reg [7:0] wpg;               // words per group, header included
  reg [7:0] wig;               // word in group of the next word received
  reg [15:0] gir;              // group in row
  reg [15:0] grx;              // groups received
  reg [15:0] act_ptr;          // activation index of the next code word
  reg [31:0] head_q;           // header of the group being received
  wire last_word = wig == wpg - 8'd1;
  wire rx = m_cyc && m_stb && m_ack;

  // Stage A: code word + activation buffer read.
  reg a_valid, a_last;
  reg [31:0] a_codes, a_head;
  reg [1:0] a_sel;             // activation byte offset / 4 in the entry
  reg [31:0] rd0, rd1, rd2, rd3;
  wire [AW-1:0] a_entry = act_ptr[AW+3:4];
  always @(posedge clk) begin
    rd0 <= act0[a_entry];
    rd1 <= act1[a_entry];
    rd2 <= act2[a_entry];
    rd3 <= act3[a_entry];
  end

  always @(posedge clk) begin
    a_valid <= 1'b0;
    if (rst) begin
      busy <= 1'b0; done <= 1'b0; bus_err <= 1'b0; arg_err <= 4'd0;
      m_cyc <= 1'b0; m_stb <= 1'b0; cycles <= 32'd0;
    end else if (start) begin
      arg_err <= check;
      done <= 1'b0;
      bus_err <= 1'b0;
      if (check == 4'd0) begin
        busy <= 1'b1;
        cycles <= 32'd0;
        mode <= bits == 4'd2 ? 2'd0 : bits == 4'd4 ? 2'd1 : 2'd2;
        // 1 + group * bits / 32 without a multiplier.
        wpg <= 8'd1 + (bits == 4'd2 ? group[8:4] : bits == 4'd4 ? group[8:3] : group[8:2]);
        wig <= 8'd0; gir <= 16'd0; grx <= 16'd0; act_ptr <= 16'd0;
        m_adr <= w_addr[31:2];
        m_cyc <= 1'b1; m_stb <= 1'b1;
      end
    end else if (busy) begin
      cycles <= cycles + 32'd1;
      if (m_cyc && m_stb && m_err) begin
        m_cyc <= 1'b0; m_stb <= 1'b0; busy <= 1'b0; bus_err <= 1'b1; done <= 1'b1;
      end else if (rx) begin
        if (wig == 8'd0) begin
          head_q <= m_dat_r;
        end else begin
          a_valid <= 1'b1;
          a_codes <= m_dat_r;
          a_head <= head_q;
          a_last <= last_word;
          a_sel <= act_ptr[3:2];
          act_ptr <= act_ptr + (mode == 2'd0 ? 16'd16 : mode == 2'd1 ? 16'd8 : 16'd4);
        end
        if (last_word) begin
          wig <= 8'd0;
          grx <= grx + 16'd1;
          if (gir == row_groups - 16'd1) begin
            gir <= 16'd0;
            act_ptr <= 16'd0;
          end else begin
            gir <= gir + 16'd1;
          end
          if (grx == n_groups - 16'd1) begin
            m_cyc <= 1'b0; m_stb <= 1'b0;
          end
        end else begin
          wig <= wig + 8'd1;
        end
        m_adr <= m_adr + 30'd1;
      end
      if (res_count == n_groups[RW:0]) begin
        busy <= 1'b0;
        done <= 1'b1;
      end
    end
  end

  // Stage B: align the 16 activations of the word's codes (byte offset
  // 0, 4, 8 or 12 within the entry; W2 words always start at 0).
  reg b_valid, b_last;
  reg [1:0] b_mode;
  reg [31:0] b_codes, b_head;
  reg [127:0] b_acts;
  wire [127:0] entry = {rd3, rd2, rd1, rd0};
  always @(posedge clk) begin
    b_valid <= a_valid && !rst;
    b_last <= a_last;
    b_mode <= mode;
    b_codes <= a_codes;
    b_head <= a_head;
    b_acts <= entry >> (32 * a_sel);
  end

  wire o_valid;
  wire [31:0] o_sum, o_head;
  gdot_mac mac (
      .clk(clk), .rst(rst), .in_valid(b_valid), .in_last(b_last), .in_mode(b_mode),
      .in_codes(b_codes), .in_acts(b_acts), .in_head(b_head),
      .out_valid(o_valid), .out_sum(o_sum), .out_head(o_head));

  always @(posedge clk) begin
    if (rst || start) res_count <= 0;
    else if (o_valid) res_count <= res_count + 1'b1;
    if (o_valid) begin
      res_head[res_count[RW-1:0]] <= o_head;
      res_sum[res_count[RW-1:0]] <= o_sum;
    end
  end
endmodule
